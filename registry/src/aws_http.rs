//! The HTTP client of every AWS SDK client the platform makes: reqwest (HTTP/1.1 over rustls,
//! the client the hooks and the health checker already use) instead of the SDK's default
//! hyper client, which also speaks HTTP/2 and so links `h2` — half a megabyte of each Lambda
//! function for a protocol none of the platform's AWS calls needs.
//!
//! The SDK's orchestrator keeps doing what it does around the client: signing, retries, and
//! the operation and attempt timeouts. This client maps the connect and read timeouts the SDK
//! asks for onto reqwest, follows no redirects and uses no proxy (as the SDK's client does
//! not), and reads each response whole (the platform calls no streaming operation).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;

/// The client to give `aws_config`'s loader (`.http_client(…)`).
#[must_use]
pub fn http_client() -> SharedHttpClient {
    SharedHttpClient::new(ReqwestClient::default())
}

type Timeouts = (Option<Duration>, Option<Duration>);

/// One reqwest client per pair of (connect, read) timeouts the SDK asks for; each keeps its
/// own connection pool.
#[derive(Debug, Default, Clone)]
struct ReqwestClient {
    connectors: Arc<Mutex<HashMap<Timeouts, SharedHttpConnector>>>,
}

impl HttpClient for ReqwestClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let timeouts = (settings.connect_timeout(), settings.read_timeout());
        let mut connectors = self
            .connectors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        connectors
            .entry(timeouts)
            .or_insert_with(|| SharedHttpConnector::new(Connector::new(timeouts)))
            .clone()
    }
}

#[derive(Debug, Clone)]
struct Connector {
    client: Result<reqwest::Client, Arc<reqwest::Error>>,
}

impl Connector {
    fn new((connect, read): Timeouts) -> Self {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy();
        if let Some(connect) = connect {
            builder = builder.connect_timeout(connect);
        }
        if let Some(read) = read {
            builder = builder.read_timeout(read);
        }
        Self {
            client: builder.build().map_err(Arc::new),
        }
    }
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = self.client.clone();
        HttpConnectorFuture::new(async move {
            let client = client.map_err(|e| ConnectorError::other(Box::new(e), None))?;
            send(&client, request).await
        })
    }
}

async fn send(
    client: &reqwest::Client,
    request: HttpRequest,
) -> Result<HttpResponse, ConnectorError> {
    let request = request
        .try_into_http1x()
        .map_err(|e| ConnectorError::user(Box::new(e)))?;
    let (parts, body) = request.into_parts();
    let body = body
        .bytes()
        .ok_or_else(|| ConnectorError::user("streaming request bodies are not supported".into()))?
        .to_vec();
    let response = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(failure)?;
    let mut head = axum::http::Response::builder().status(response.status());
    if let Some(headers) = head.headers_mut() {
        *headers = response.headers().clone();
    }
    let body = response.bytes().await.map_err(failure)?;
    let response = head
        .body(SdkBody::from(body))
        .map_err(|e| ConnectorError::other(Box::new(e), None))?;
    HttpResponse::try_from(response).map_err(|e| ConnectorError::other(Box::new(e), None))
}

/// Timeouts as timeouts, the rest as I/O errors, which the SDK retries.
fn failure(error: reqwest::Error) -> ConnectorError {
    if error.is_timeout() {
        ConnectorError::timeout(Box::new(error))
    } else if error.is_builder() {
        ConnectorError::user(Box::new(error))
    } else {
        ConnectorError::io(Box::new(error))
    }
}
