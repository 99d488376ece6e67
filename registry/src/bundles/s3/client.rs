//! A small S3 client: the four calls the bundle store makes (CreateBucket, PutObject,
//! GetObject and a pre-signed GetObject link), signed with SigV4 by `aws-sigv4` and sent
//! through the SDK's own HTTPS connector (`aws-smithy-http-client`, the same root
//! certificates). The S3 SDK made the registry API's zip 0.8 MB larger for these four
//! (BENCHMARKS.md, "Lambda zips").
//!
//! Like the SDK configured with `force_path_style`: path-style URLs
//! (`{endpoint}/{bucket}/{key}`), the endpoint `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL` (the
//! emulator) or else `https://s3.{region}.amazonaws.com`, the credentials provider of the SDK
//! configuration (a session token included), its retry attempts and its connect and read
//! timeouts. Not honoured: FIPS and dual-stack endpoints, the SDK's clock-skew correction and
//! its per-attempt timeout.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation,
    SigningSettings, UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4::SigningParams;
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use aws_types::service_config::ServiceConfigKey;
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, HeaderName};
use http::{Method, Uri};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::error::{Cause, Error, Result};

/// What S3 leaves unencoded in a path segment (RFC 3986's unreserved characters).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// A key keeps its `/`: each segment is encoded, once.
const KEY: &AsciiSet = &UNRESERVED.remove(b'/');
/// The longest a pre-signed link may last (SigV4's limit).
pub const MAX_LINK: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// Credentials that expire sooner than this are fetched again.
const REFRESH_BEFORE: Duration = Duration::from_secs(5 * 60);

/// An S3 client over an SDK configuration. Cheap to clone: clones share the connection pool
/// and the credentials.
#[derive(Debug, Clone)]
pub struct S3Client {
    sdk: SdkConfig,
    endpoint: Option<String>,
    credentials: Arc<Mutex<Option<Credentials>>>,
    /// Made on the first call, so that a function's cold start does not build it.
    connector: Arc<OnceLock<SharedHttpConnector>>,
}

/// S3's answer: its status and body.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Bytes,
}

impl S3Client {
    /// Reads the endpoint override now; region and credentials on each call.
    pub fn new(sdk: &SdkConfig) -> Self {
        Self {
            sdk: sdk.clone(),
            endpoint: endpoint_override(sdk),
            credentials: Arc::default(),
            connector: Arc::default(),
        }
    }

    /// As [`S3Client::new`], sending through `connector` (tests).
    #[cfg(test)]
    fn with_connector(sdk: &SdkConfig, connector: SharedHttpConnector) -> Self {
        let client = Self::new(sdk);
        client.connector.get_or_init(|| connector);
        client
    }

    /// CreateBucket, in the configuration's region.
    pub async fn create_bucket(&self, bucket: &str) -> Result<()> {
        let doing = format!("creating bucket {bucket}");
        let region = self.region(&doing)?;
        // Outside us-east-1 S3 wants the region named in the body.
        let body = if region == "us-east-1" {
            Bytes::new()
        } else {
            Bytes::from(format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <LocationConstraint>{region}</LocationConstraint></CreateBucketConfiguration>"
            ))
        };
        let url = self.url(&doing, bucket, None)?;
        let answer = self.send(&doing, Method::PUT, &url, &[], body).await?;
        answer.ok(&doing)
    }

    /// PutObject with the object's `Content-Type` and `Cache-Control`.
    pub async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        cache_control: &str,
    ) -> Result<()> {
        let doing = format!("storing s3://{bucket}/{key}");
        let url = self.url(&doing, bucket, Some(key))?;
        let headers = [(CONTENT_TYPE, content_type), (CACHE_CONTROL, cache_control)];
        let answer = self
            .send(&doing, Method::PUT, &url, &headers, Bytes::from(body))
            .await?;
        answer.ok(&doing)
    }

    /// GetObject: the object's bytes, or `None` when the bucket has no such key. A missing
    /// bucket is an error naming it.
    pub async fn get_object(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>> {
        let doing = format!("reading s3://{bucket}/{key}");
        let url = self.url(&doing, bucket, Some(key))?;
        let answer = self
            .send(&doing, Method::GET, &url, &[], Bytes::new())
            .await?;
        match (answer.status, answer.code().as_deref()) {
            (200..=299, _) => Ok(Some(answer.body.to_vec())),
            (404, Some("NoSuchKey") | None) => Ok(None),
            _ => Err(answer.failure(&doing)),
        }
    }

    /// A GetObject link anyone may follow for `expires` (at most [`MAX_LINK`]). Signed with
    /// the current credentials: temporary ones (a Lambda function's) put their session token
    /// in the link, which stops working when they expire, however long `expires` is.
    pub async fn presigned_get(
        &self,
        bucket: &str,
        key: &str,
        expires: Duration,
    ) -> Result<String> {
        let doing = format!("signing a link to s3://{bucket}/{key}");
        if expires.is_zero() || expires > MAX_LINK {
            return Err(Error::internal(format!(
                "{doing}: a link lasts from 1 s to 7 days, not {} s",
                expires.as_secs()
            )));
        }
        let url = self.url(&doing, bucket, Some(key))?;
        let region = self.region(&doing)?;
        let identity = Identity::from(self.credentials(&doing).await?);
        presign(&url, &identity, region, SystemTime::now(), expires)
            .map_err(|e| Error::internal_because(doing, e))
    }

    fn region(&self, doing: &str) -> Result<&str> {
        self.sdk.region().map(AsRef::as_ref).ok_or_else(|| {
            Error::unavailable(format!("{doing}: no AWS region is set (AWS_REGION)"))
        })
    }

    /// The path-style URL of `bucket`, or of `key` in it.
    fn url(&self, doing: &str, bucket: &str, key: Option<&str>) -> Result<String> {
        let base = match &self.endpoint {
            Some(endpoint) => endpoint.clone(),
            None => {
                let region = self.region(doing)?;
                let domain = if region.starts_with("cn-") {
                    "amazonaws.com.cn"
                } else {
                    "amazonaws.com"
                };
                format!("https://s3.{region}.{domain}")
            }
        };
        if base.parse::<Uri>().map_or(true, |uri| uri.host().is_none()) {
            return Err(Error::unavailable(format!(
                "{doing}: the S3 endpoint {base} is not a URL (AWS_ENDPOINT_URL)"
            )));
        }
        let bucket = utf8_percent_encode(bucket, UNRESERVED);
        Ok(match key {
            Some(key) => format!("{base}/{bucket}/{}", encode_key(key)),
            None => format!("{base}/{bucket}"),
        })
    }

    /// The configuration's credentials, kept until five minutes before they expire.
    async fn credentials(&self, doing: &str) -> Result<Credentials> {
        let cached = self
            .credentials
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(credentials) = cached.filter(fresh) {
            return Ok(credentials);
        }
        let provider = self.sdk.credentials_provider().ok_or_else(|| {
            Error::unavailable(format!("{doing}: no AWS credentials are configured"))
        })?;
        let credentials = provider.provide_credentials().await.map_err(|e| {
            Error::unavailable_because(format!("{doing}: loading AWS credentials"), e)
        })?;
        *self
            .credentials
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(credentials.clone());
        Ok(credentials)
    }

    fn connector(&self) -> &SharedHttpConnector {
        self.connector.get_or_init(|| {
            let mut settings = HttpConnectorSettings::builder();
            if let Some(timeouts) = self.sdk.timeout_config() {
                settings.set_connect_timeout(timeouts.connect_timeout());
                settings.set_read_timeout(timeouts.read_timeout());
            }
            aws_smithy_http_client::default_connector(&settings.build(), self.sdk.sleep_impl())
                .expect("the rustls-aws-lc feature of aws-smithy-http-client gives a connector")
        })
    }

    /// Sends a signed request; a connection failure, a 5xx or S3's throttling is tried again,
    /// as many times as the configuration's retries allow, with exponential backoff and jitter.
    async fn send(
        &self,
        doing: &str,
        method: Method,
        url: &str,
        headers: &[(HeaderName, &str)],
        body: Bytes,
    ) -> Result<Answer> {
        let region = self.region(doing)?;
        let identity = Identity::from(self.credentials(doing).await?);
        let retry = self
            .sdk
            .retry_config()
            .cloned()
            .unwrap_or_else(RetryConfig::standard);
        let mut attempt = 1;
        loop {
            let mut request = http::Request::builder().method(method.clone()).uri(url);
            for (name, value) in headers {
                request = request.header(name, *value);
            }
            let mut request = request
                .header(CONTENT_LENGTH, body.len())
                .body(SdkBody::from(body.clone()))
                .map_err(|e| Error::internal_because(format!("{doing}: the request"), e))?;
            sign_request(&mut request, &body, &identity, region, SystemTime::now())
                .map_err(|e| Error::internal_because(format!("{doing}: signing"), e))?;
            let last = attempt >= retry.max_attempts();
            match self.attempt(doing, request).await? {
                Ok(answer) if last || !answer.transient() => return Ok(answer),
                Err(e) if last || !(e.is_io() || e.is_timeout()) => {
                    return Err(Error::unavailable_because(
                        format!("{doing}: S3 did not answer ({url})"),
                        e,
                    ));
                }
                Ok(answer) => tracing::debug!(doing, status = answer.status, attempt, "S3 again"),
                Err(e) => tracing::debug!(doing, error = %e, attempt, "S3 again"),
            }
            tokio::time::sleep(backoff(&retry, attempt)).await;
            attempt += 1;
        }
    }

    /// One attempt: S3's answer, or why none came.
    async fn attempt(
        &self,
        doing: &str,
        request: http::Request<SdkBody>,
    ) -> Result<std::result::Result<Answer, ConnectorError>> {
        let request = request
            .try_into()
            .map_err(|e| Error::internal_because(format!("{doing}: the request"), e))?;
        let response = match self.connector().call(request).await {
            Ok(response) => response,
            Err(e) => return Ok(Err(e)),
        };
        let status = response.status().as_u16();
        let body = ByteStream::new(response.into_body())
            .collect()
            .await
            .map_err(|e| Error::unavailable_because(format!("{doing}: reading S3's answer"), e))?
            .into_bytes();
        Ok(Ok(Answer { status, body }))
    }
}

impl Answer {
    /// S3's error code (`NoSuchKey`), from its XML error document.
    fn code(&self) -> Option<String> {
        xml_text(&self.body, "Code")
    }

    fn ok(&self, doing: &str) -> Result<()> {
        match self.status {
            200..=299 => Ok(()),
            _ => Err(self.failure(doing)),
        }
    }

    /// `{doing}: {code}: {message}`, as the SDK's failures read (`aws::describe`).
    fn failure(&self, doing: &str) -> Error {
        let status = self.status;
        Error::unavailable(match self.code() {
            Some(code) => {
                let message = xml_text(&self.body, "Message");
                let message = message.as_deref().unwrap_or("no message");
                format!("{doing}: {code}: {message}")
            }
            None => format!("{doing}: S3 answered HTTP {status}"),
        })
    }

    /// Worth trying again: S3 busy, throttling or failing on its side.
    fn transient(&self) -> bool {
        matches!(self.status, 429 | 500 | 502 | 503 | 504)
            || matches!(
                self.code().as_deref(),
                Some("RequestTimeout" | "SlowDown" | "InternalError" | "ServiceUnavailable")
            )
    }
}

/// `AWS_ENDPOINT_URL_S3` (or a profile's `endpoint_url` for S3), else `AWS_ENDPOINT_URL`: the
/// S3 SDK's order.
fn endpoint_override(sdk: &SdkConfig) -> Option<String> {
    let key = ServiceConfigKey::builder()
        .service_id("S3")
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
        .ok();
    sdk.service_config()
        .zip(key)
        .and_then(|(config, key)| config.load_config(key))
        .or_else(|| sdk.endpoint_url().map(str::to_owned))
        .map(|endpoint| endpoint.trim_end_matches('/').to_owned())
}

fn fresh(credentials: &Credentials) -> bool {
    credentials.expiry().is_none_or(|expiry| {
        expiry
            .duration_since(SystemTime::now())
            .is_ok_and(|left| left > REFRESH_BEFORE)
    })
}

/// The wait before attempt `attempt + 1`: the initial backoff doubled each time, capped, times
/// a random factor (full jitter).
fn backoff(retry: &RetryConfig, attempt: u32) -> Duration {
    let doubled = retry
        .initial_backoff()
        .saturating_mul(1 << (attempt - 1).min(16));
    doubled
        .min(retry.max_backoff())
        .mul_f64(rand::random::<f64>())
}

/// A key as S3 signs and reads it: each `/`-separated segment percent-encoded, once.
fn encode_key(key: &str) -> String {
    utf8_percent_encode(key, KEY).to_string()
}

/// S3's SigV4 settings: the path signed as sent (already encoded, not normalised).
fn settings() -> SigningSettings {
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings
}

/// Signs `request` in its headers (`authorization`, `x-amz-date`, `x-amz-content-sha256` of
/// `body`, and `x-amz-security-token` with temporary credentials).
fn sign_request<B>(
    request: &mut http::Request<B>,
    body: &[u8],
    identity: &Identity,
    region: &str,
    time: SystemTime,
) -> std::result::Result<(), Cause> {
    let mut settings = settings();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = SigningParams::builder()
        .identity(identity)
        .region(region)
        .name("s3")
        .time(time)
        .settings(settings)
        .build()?
        .into();
    let uri = request.uri().to_string();
    let headers = request
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)));
    let signable = SignableRequest::new(
        request.method().as_str(),
        uri,
        headers,
        SignableBody::Bytes(body),
    )?;
    let (instructions, _) = sign(signable, &params)?.into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}

/// `url` with SigV4's query (`X-Amz-Signature` …) for a GET within `expires` of `time`.
fn presign(
    url: &str,
    identity: &Identity,
    region: &str,
    time: SystemTime,
    expires: Duration,
) -> std::result::Result<String, Cause> {
    let mut settings = settings();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(expires);
    let params = SigningParams::builder()
        .identity(identity)
        .region(region)
        .name("s3")
        .time(time)
        .settings(settings)
        .build()?
        .into();
    let signable = SignableRequest::new(
        "GET",
        url,
        std::iter::empty(),
        SignableBody::UnsignedPayload,
    )?;
    let (instructions, _) = sign(signable, &params)?.into_parts();
    let mut request = http::Request::get(url)
        .body(())
        .expect("a URL SigV4 has parsed is a request's URI");
    instructions.apply_to_request_http1x(&mut request);
    Ok(request.uri().to_string())
}

/// The text of the first `<tag>` of an XML document, unescaped.
fn xml_text(body: &[u8], tag: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let open = format!("<{tag}>");
    let start = text.find(&open)? + open.len();
    let end = start + text[start..].find(&format!("</{tag}>"))?;
    Some(
        text[start..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
