//! Shim `LambdaFront`: **moto cannot invoke a Lambda function** (it needs Docker). The
//! platform's functions reach Lambda through this front (`AWS_ENDPOINT_URL_LAMBDA`): every
//! control-plane call (CreateFunction, GetFunction, DeleteFunction, …) goes on to moto as
//! sent; an `Invoke` of a module's function goes to cargo-lambda's runtime emulator, by name,
//! where the module's binary runs with the environment the installer gave the function on
//! moto — started on its first invocation, and again when the installer changed the function
//! (a cold start, as Lambda does).
//!
//! A function can be made to crash ([`LambdaFront::crash`]): its invocations are then answered
//! as Lambda answers those of a function whose runtime exits at start
//! (`X-Amz-Function-Error: Unhandled`, `Runtime.ExitError`), until it is healed.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use aws_config::SdkConfig;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::task::JoinHandle;

use crate::lambda_emulator::{Function, LambdaEmulator};

/// A module function the front can run: the name the installer gives it on moto
/// (`plinth-{module}`) and the binary that serves it.
pub struct ModuleFunction {
    pub name: &'static str,
    pub binary: PathBuf,
}

struct Front {
    moto: String,
    lambda: aws_sdk_lambda::Client,
    http: reqwest::Client,
    emulator: Arc<Mutex<LambdaEmulator>>,
    modules: Vec<ModuleFunction>,
    /// What each running module function was started from (moto's `RevisionId`).
    running: Mutex<HashMap<String, String>>,
    crashed: Mutex<HashSet<String>>,
    /// The environment every process gets to reach the emulated AWS (what a Lambda role and
    /// the region give a real function).
    aws_env: Vec<(String, String)>,
    /// Invocations of each module function, in order, by payload path: what a test asserts.
    invoked: Mutex<Vec<(String, String)>>,
}

pub struct LambdaFront {
    front: Arc<Front>,
    task: JoinHandle<()>,
}

impl Drop for LambdaFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LambdaFront {
    /// Serves the front on `listener`, before moto (`AWS_ENDPOINT_URL`) and the runtime
    /// emulator.
    pub async fn start(
        listener: tokio::net::TcpListener,
        sdk: &SdkConfig,
        emulator: Arc<Mutex<LambdaEmulator>>,
        modules: Vec<ModuleFunction>,
        aws_env: Vec<(String, String)>,
    ) -> Self {
        let moto = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL (moto)");
        let front = Arc::new(Front {
            moto: moto.trim_end_matches('/').to_owned(),
            lambda: aws_sdk_lambda::Client::new(sdk),
            http: reqwest::Client::new(),
            emulator,
            modules,
            running: Mutex::new(HashMap::new()),
            crashed: Mutex::new(HashSet::new()),
            aws_env,
            invoked: Mutex::new(Vec::new()),
        });
        let app = Router::new().fallback(serve).with_state(Arc::clone(&front));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { front, task }
    }

    /// Makes function `name` crash at start: its process stops, and its invocations fail as
    /// Lambda's do, until [`Self::heal`].
    pub fn crash(&self, name: &str) {
        lock(&self.front.crashed).insert(name.to_owned());
        lock(&self.front.running).remove(name);
        lock(&self.front.emulator).stop(name);
    }

    /// Lets function `name` start again on its next invocation.
    pub fn heal(&self, name: &str) {
        lock(&self.front.crashed).remove(name);
    }

    /// The paths module function `name` was invoked at (hooks, health checks, routes) and
    /// the events it was given (`event:{detail-type}`), in order.
    pub fn invocations(&self, name: &str) -> Vec<String> {
        lock(&self.front.invoked)
            .iter()
            .filter(|(function, _)| function == name)
            .map(|(_, path)| path.clone())
            .collect()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The function an Invoke names, by name: the path holds a name or an ARN (percent-encoded).
fn invoked_function(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/2015-03-31/functions/")?;
    let id = rest.strip_suffix("/invocations")?;
    let id = id.replace("%3A", ":").replace("%3a", ":");
    // arn:aws:lambda:{region}:{account}:function:{name}[:{qualifier}]
    let name = match id.split_once(":function:") {
        Some((_, tail)) => tail.split(':').next().unwrap_or_default().to_owned(),
        None => id,
    };
    Some(name)
}

async fn serve(State(front): State<Arc<Front>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, 64 << 20).await {
        Ok(bytes) => bytes,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let path = parts.uri.path().to_owned();
    if parts.method == axum::http::Method::POST
        && let Some(name) = invoked_function(&path)
        && front.modules.iter().any(|m| m.name == name)
    {
        return front.invoke_module(&name, &parts.headers, body).await;
    }
    let target = format!(
        "{}{}",
        front.moto,
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut forwarded = front.http.request(parts.method, target).body(body);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            forwarded = forwarded.header(name, value);
        }
    }
    relay(forwarded.send().await).await
}

impl Front {
    async fn invoke_module(&self, name: &str, headers: &HeaderMap, body: Bytes) -> Response {
        // An HTTP API request (hooks, health checks) or a load balancer's by its path; an
        // EventBridge event (a rule's delivery) as `event:{detail-type}`.
        let payload: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let http_path = payload["rawPath"].as_str().or_else(|| {
            payload["requestContext"]["elb"]
                .is_object()
                .then(|| payload["path"].as_str())?
        });
        let path = match (http_path, payload["detail-type"].as_str()) {
            (Some(path), _) => path.to_owned(),
            (None, Some(detail_type)) => format!("event:{detail_type}"),
            (None, None) => String::new(),
        };
        lock(&self.invoked).push((name.to_owned(), path));
        if lock(&self.crashed).contains(name) {
            let error = json!({
                "errorType": "Runtime.ExitError",
                "errorMessage": "RequestId: cell Error: Runtime exited with error: exit status 1"
            });
            return Response::builder()
                .status(StatusCode::OK)
                .header("x-amz-function-error", "Unhandled")
                .header("content-type", "application/json")
                .body(Body::from(error.to_string()))
                .unwrap_or_default();
        }
        if let Err(answer) = self.cold_start_if_changed(name).await {
            return *answer;
        }
        let endpoint = lock(&self.emulator).endpoint.clone();
        let target = format!("{endpoint}/2015-03-31/functions/{name}/invocations");
        let mut forwarded = self.http.post(target).body(body);
        for header in ["x-amz-invocation-type", "x-amz-log-type", "content-type"] {
            if let Some(value) = headers.get(header) {
                forwarded = forwarded.header(header, value);
            }
        }
        relay(forwarded.send().await).await
    }

    /// Starts the module's process when it is not running, or runs a new one when the
    /// function changed on moto since it started (an upgrade's new code or environment).
    async fn cold_start_if_changed(&self, name: &str) -> Result<(), Box<Response>> {
        let configuration = self
            .lambda
            .get_function_configuration()
            .function_name(name)
            .send()
            .await
            .map_err(|e| {
                let error = json!({"Type": "User", "message": format!("{e:?}")});
                Box::new((StatusCode::NOT_FOUND, error.to_string()).into_response())
            })?;
        let revision = configuration.revision_id().unwrap_or_default().to_owned();
        if lock(&self.running).get(name) == Some(&revision) {
            return Ok(());
        }
        let module = self
            .modules
            .iter()
            .find(|m| m.name == name)
            .expect("a module function");
        let mut env: Vec<(String, String)> = configuration
            .environment()
            .and_then(|e| e.variables())
            .map(|vars| vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        env.extend(self.aws_env.iter().cloned());
        let borrowed: Vec<(&str, &str)> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        lock(&self.emulator).run(&Function {
            name,
            binary: &module.binary,
            env: &borrowed,
        });
        lock(&self.running).insert(name.to_owned(), revision);
        Ok(())
    }
}

/// The answer of moto or the emulator, as it came.
async fn relay(sent: Result<reqwest::Response, reqwest::Error>) -> Response {
    let answer = match sent {
        Ok(answer) => answer,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let mut response = Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        if name != "content-length" && name != "transfer-encoding" && name != "connection" {
            response = response.header(name.as_str(), value.as_bytes());
        }
    }
    match answer.bytes().await {
        Ok(body) => response.body(Body::from(body)).unwrap_or_default(),
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}
