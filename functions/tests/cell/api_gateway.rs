//! Shim `ApiGateway`: **moto stores an HTTP API's routes but does not serve a request**, so
//! this stands in for API Gateway serving one, as template.yaml configures it — and only that:
//!
//! - the routes: `GET /api/v1/tenants/{tenant}/modules/{module}/config` → config resolver;
//!   the registry API's platform routes → registry API; any other `/api/v1/{proxy+}` (module
//!   routes) → the `plinth` REQUEST authorizer (payload 2.0, simple responses, identity
//!   sources `Authorization`, method and path), then, with `X-Plinth-Context` overwritten by
//!   `$context.authorizer.context`, the module's integration as the installer creates it: a
//!   Lambda module's function (`AWS_PROXY`), an ECS module's task through the VPC link
//!   (`HTTP_PROXY`; a running container of the `Containers` shim), else the registry API —
//!   picked by the module's name; in a cell with a module listener, the integration the
//!   installer stored on the HTTP API when it goes to the listener (the `alb` shim);
//! - the request as an HTTP API payload 2.0 event, the function's answer back as a response.
//!
//! Each module request is written to the access log (the `AccessLog` shim) as the template's
//! format has it. It does not cache authorizer decisions or throttle.

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::access_log::Logged;
use crate::alb::through_the_module_listener;
use crate::platform::{AUTHORIZER, CONFIG_RESOLVER, Cell, Invoked, Invoker, REGISTRY_API};

/// An HTTP request as a client sends it to the API.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: &'static str,
    /// Path and query, e.g. `/api/v1/tenants/acme/modules/financial/config?company=acme-de`.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
}

impl Request {
    pub fn new(method: &'static str, target: &str) -> Self {
        Self {
            method,
            target: target.to_owned(),
            headers: Vec::new(),
            body: None,
        }
    }

    #[must_use]
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    #[must_use]
    pub fn json(mut self, body: Value) -> Self {
        // As an HTTP client sends it: the body's length declared.
        let length = body.to_string().len().to_string();
        self.body = Some(body);
        self.header("content-type", "application/json")
            .header("content-length", &length)
    }
}

/// What the client gets back.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Map<String, Value>,
    pub body: String,
    /// On a module route, the authorizer function's answer (`isAuthorized`, `context`).
    pub authorizer: Option<Value>,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(Value::as_str)
    }
}

/// Where template.yaml routes a request.
enum Route {
    /// A function's own route: its route key and path parameters.
    Function(&'static str, String, Map<String, Value>),
    /// `ANY /api/v1/{proxy+}`: the authorizer, then the registry API.
    Module(String),
    NotFound,
}

const PLATFORM_PREFIXES: [&str; 4] = [
    "/api/v1/modules",
    "/api/v1/tenants",
    "/api/v1/rbac/",
    "/api/v1/events",
];

fn route(method: &str, path: &str) -> Route {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if method == "GET"
        && let ["api", "v1", "tenants", tenant, "modules", module, "config"] = segments[..]
    {
        let params = json!({"tenant": tenant, "module": module});
        return Route::Function(
            CONFIG_RESOLVER,
            "GET /api/v1/tenants/{tenant}/modules/{module}/config".into(),
            params.as_object().cloned().unwrap_or_default(),
        );
    }
    if ["/health", "/.well-known/jwks.json", "/openapi.json"].contains(&path) {
        return Route::Function(REGISTRY_API, format!("{method} {path}"), Map::new());
    }
    for prefix in PLATFORM_PREFIXES {
        let base = prefix.trim_end_matches('/');
        if path == base {
            return Route::Function(REGISTRY_API, format!("ANY {base}"), Map::new());
        }
        if let Some(rest) = path.strip_prefix(&format!("{base}/")) {
            let params = json!({"proxy": rest});
            return Route::Function(
                REGISTRY_API,
                format!("ANY {base}/{{proxy+}}"),
                params.as_object().cloned().unwrap_or_default(),
            );
        }
    }
    match path.strip_prefix("/api/v1/") {
        Some(rest) if !rest.is_empty() => Route::Module(rest.to_owned()),
        _ => Route::NotFound,
    }
}

/// API Gateway in front of the cell's functions.
pub struct ApiGateway<'a> {
    pub cell: &'a Cell,
}

impl ApiGateway<'_> {
    pub async fn send(&self, request: Request) -> Response {
        let (path, query) = request
            .target
            .split_once('?')
            .unwrap_or((request.target.as_str(), ""));
        match route(request.method, path) {
            Route::Function(function, route_key, params) => {
                let event = http_event(&request, path, query, &route_key, params);
                self.integrate(function, &event).await
            }
            Route::Module(proxy) => self.module_route(&request, path, query, &proxy).await,
            Route::NotFound => gateway_answer(404, "Not Found"),
        }
    }

    /// A module route, answered by [`Self::authorized_module_route`] and written to the
    /// access log with the authorizer's context when it allowed the request.
    async fn module_route(
        &self,
        request: &Request,
        path: &str,
        query: &str,
        proxy: &str,
    ) -> Response {
        let route_key = "ANY /api/v1/{proxy+}";
        let params = json!({"proxy": proxy})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let started = std::time::Instant::now();
        let answer = self
            .authorized_module_route(request, path, query, route_key, params, proxy)
            .await;
        let authorizer = answer
            .authorizer
            .as_ref()
            .filter(|decided| decided["isAuthorized"] == true)
            .map_or(Value::Null, |decided| decided["context"].clone());
        self.cell.access_log.record(&Logged {
            status: answer.status,
            response_bytes: answer.body.len(),
            latency_ms: started.elapsed().as_millis(),
            route_key,
            authorizer: &authorizer,
        });
        answer
    }

    /// No `Authorization` (an identity source) is 401 without invoking the authorizer;
    /// `isAuthorized: false` is 403; otherwise the module's integration gets the request with
    /// the authorizer's tenant context.
    async fn authorized_module_route(
        &self,
        request: &Request,
        path: &str,
        query: &str,
        route_key: &str,
        params: Map<String, Value>,
        proxy: &str,
    ) -> Response {
        let mut event = http_event(request, path, query, route_key, params);
        let Some(authorization) = event["headers"]["authorization"]
            .as_str()
            .map(str::to_owned)
        else {
            return gateway_answer(401, "Unauthorized");
        };
        let mut authorizer = event.clone();
        authorizer["type"] = "REQUEST".into();
        authorizer["routeArn"] = format!(
            "arn:aws:execute-api:us-east-1:123456789012:cell/$default/{}{path}",
            request.method
        )
        .into();
        authorizer["identitySource"] = json!([authorization, request.method, path]);
        if let Some(object) = authorizer.as_object_mut() {
            object.remove("body");
            object.remove("isBase64Encoded");
        }
        let decided = self.cell.invoke(AUTHORIZER, &authorizer).await;
        assert!(
            decided.function_error.is_none(),
            "the authorizer failed: {:?}\n{}",
            decided.payload,
            self.cell.log(AUTHORIZER)
        );
        if decided.payload["isAuthorized"] != true {
            return Response {
                authorizer: Some(decided.payload),
                ..gateway_answer(403, "Forbidden")
            };
        }
        // `overwrite:header.x-plinth-context: $context.authorizer.context`
        let context = decided.payload["context"]["context"].clone();
        event["headers"]["x-plinth-context"] = context;
        event["requestContext"]["authorizer"] =
            json!({"lambda": decided.payload["context"].clone()});
        let module = proxy.split('/').next().unwrap_or_default();
        let headers = event["headers"].as_object().cloned().unwrap_or_default();
        let answer = if let Some(answer) = through_the_module_listener(
            self.cell,
            request,
            path,
            query,
            &headers,
            &decided.payload["context"],
        )
        .await
        {
            answer
        } else if let Some(endpoint) = self
            .cell
            .containers
            .as_ref()
            .and_then(|containers| containers.endpoint_of(&format!("plinth-{module}")))
        {
            forward(&endpoint, request, path, query, &event["headers"]).await
        } else if let Some(invoked) = self
            .cell
            .invoke_module(&format!("plinth-{module}"), &event)
            .await
        {
            answer_of(module, invoked)
        } else {
            self.integrate(REGISTRY_API, &event).await
        };
        Response {
            authorizer: Some(decided.payload),
            ..answer
        }
    }

    /// An `AWS_PROXY` integration, payload 2.0: the function's answer as the response.
    async fn integrate(&self, function: &str, event: &Value) -> Response {
        let invoked = self.cell.invoke(function, event).await;
        if invoked.function_error.is_some() || invoked.status != 200 {
            eprintln!("{}", self.cell.log(function));
        }
        answer_of(function, invoked)
    }
}

/// An `HTTP_PROXY` integration through the VPC link: the request, its headers as the
/// integration sends them (`X-Plinth-Context` overwritten), to the task at `endpoint`.
pub async fn forward(
    endpoint: &str,
    request: &Request,
    path: &str,
    query: &str,
    headers: &Value,
) -> Response {
    let url = if query.is_empty() {
        format!("{endpoint}{path}")
    } else {
        format!("{endpoint}{path}?{query}")
    };
    let method = reqwest::Method::from_bytes(request.method.as_bytes()).expect("a method");
    let mut sent = reqwest::Client::new()
        .request(method, &url)
        .timeout(std::time::Duration::from_secs(30));
    for (name, value) in headers.as_object().into_iter().flatten() {
        if name != "host"
            && let Some(value) = value.as_str()
        {
            sent = sent.header(name.as_str(), value);
        }
    }
    if let Some(body) = &request.body {
        sent = sent.body(body.to_string());
    }
    let Ok(answer) = sent.send().await else {
        return gateway_answer(503, "Service Unavailable");
    };
    let status = answer.status().as_u16();
    let headers = answer
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), Value::from(v.to_str().ok()?))))
        .collect();
    let body = answer.text().await.unwrap_or_default();
    Response {
        status,
        headers,
        body,
        authorizer: None,
    }
}

/// What API Gateway answers for an `AWS_PROXY` integration's invocation.
pub fn answer_of(function: &str, invoked: Invoked) -> Response {
    if invoked.function_error.is_some() || invoked.status != 200 {
        eprintln!(
            "{function} failed ({}): {}",
            invoked.status, invoked.payload
        );
        return gateway_answer(500, "Internal Server Error");
    }
    let answer = invoked.payload;
    let mut body = answer["body"].as_str().unwrap_or_default().to_owned();
    if answer["isBase64Encoded"] == true {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&body)
            .expect("a base64 body");
        body = String::from_utf8_lossy(&bytes).into_owned();
    }
    let status = answer["statusCode"].as_u64().map_or(200, |s| s as u16);
    let mut headers = answer["headers"].as_object().cloned().unwrap_or_default();
    if let Some(multi) = answer["multiValueHeaders"].as_object() {
        for (name, values) in multi {
            if let Some(first) = values.get(0) {
                headers.entry(name.clone()).or_insert(first.clone());
            }
        }
    }
    Response {
        status,
        headers,
        body,
        authorizer: None,
    }
}

/// API Gateway's own answer (`{"message": …}`), as when no route matches or the authorizer
/// refuses.
pub fn gateway_answer(status: u16, message: &str) -> Response {
    Response {
        status,
        headers: Map::new(),
        body: json!({"message": message}).to_string(),
        authorizer: None,
    }
}

/// The HTTP API's payload 2.0 event for `request` on `route_key`.
fn http_event(
    request: &Request,
    path: &str,
    query: &str,
    route_key: &str,
    path_parameters: Map<String, Value>,
) -> Value {
    let mut headers = Map::new();
    for (name, value) in &request.headers {
        headers.insert(name.clone(), value.clone().into());
    }
    headers.insert(
        "host".into(),
        "cell.execute-api.us-east-1.amazonaws.com".into(),
    );
    let mut query_parameters = Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        query_parameters.insert(name.into(), value.into());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "cell",
            "domainName": "cell.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "cell",
            "http": {
                "method": request.method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "plinth-cell"
            },
            "requestId": format!("cell-{now}"),
            "routeKey": route_key,
            "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": now
        },
        "isBase64Encoded": false
    });
    if !query_parameters.is_empty() {
        event["queryStringParameters"] = query_parameters.into();
    }
    if !path_parameters.is_empty() {
        event["pathParameters"] = path_parameters.into();
    }
    if let Some(body) = &request.body {
        event["body"] = body.to_string().into();
    }
    event
}

/// The HTTP API's platform routes (the registry API's and the config resolver's, no
/// authorizer), served over HTTP on `listener`: where the cell's modules reach the platform
/// (their `PLINTH_URL`), as on AWS they reach the HTTP API.
pub fn serve_platform_routes(
    listener: tokio::net::TcpListener,
    invoker: Invoker,
) -> tokio::task::JoinHandle<()> {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;

    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let invoker = invoker.clone();
        async move {
            let (parts, body) = request.into_parts();
            let bytes = axum::body::to_bytes(body, 16 << 20)
                .await
                .unwrap_or_default();
            let method: &'static str = match parts.method.as_str() {
                "GET" => "GET",
                "POST" => "POST",
                "PUT" => "PUT",
                "PATCH" => "PATCH",
                "DELETE" => "DELETE",
                _ => return gateway_answer(405, "Method Not Allowed").into_http(),
            };
            let target = parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            let mut request = Request::new(method, &target);
            for (name, value) in &parts.headers {
                if let Ok(value) = value.to_str() {
                    request = request.header(name.as_str(), value);
                }
            }
            if !bytes.is_empty() {
                request.body = serde_json::from_slice(&bytes).ok();
            }
            let (path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
            let answer = match route(method, path) {
                Route::Function(function, route_key, params) => {
                    let event = http_event(&request, path, query, &route_key, params);
                    match invoker.invoke(function, &event).await {
                        Ok(invoked) => answer_of(function, invoked),
                        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
                    }
                }
                _ => gateway_answer(404, "Not Found"),
            };
            answer.into_http()
        }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    })
}

impl Response {
    fn into_http(self) -> axum::response::Response {
        let mut response = axum::response::Response::builder().status(self.status);
        for (name, value) in &self.headers {
            if let Some(value) = value.as_str() {
                response = response.header(name.as_str(), value);
            }
        }
        response
            .body(axum::body::Body::from(self.body))
            .unwrap_or_default()
    }
}
