//! Usage metering end to end (issue 23, Deliver 3): `plinth up` run as a real process, a
//! known load sent through its gateway to a module backend this test serves, and the usage
//! API read back — before and after the platform stops (gracefully, or killed after a flush).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use rustix::process::{Pid, Signal, kill_process};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "usage-test-secret-0123456789abcdef0123456789";
const PATIENCE: Duration = Duration::from_secs(60);

/// The sketch's relative error (`plinth_registry::usage::RELATIVE_ERROR`).
const RELATIVE_ERROR: f64 = 0.01;

fn token(sub: &str, tenant: Option<&str>, roles: &[&str]) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let mut claims = json!({"sub": sub, "roles": roles, "exp": exp});
    if let Some(tenant) = tenant {
        claims["tenant_id"] = json!(tenant);
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
    )
    .unwrap()
}

/// The module's backend: `…/sleep/{ms}` answers `slept` after that long, `…/echo` its body
/// back, `…/missing` a 404 `nope`, `…/boom` a 500 `boom!`, anything else (health, events)
/// `{}`.
async fn backend() -> String {
    async fn answer(request: axum::extract::Request) -> (StatusCode, Vec<u8>) {
        let path = request.uri().path().to_owned();
        if let Some(ms) = path.rsplit_once("/sleep/").map(|(_, ms)| ms) {
            let ms: u64 = ms.parse().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            return (StatusCode::OK, b"slept".to_vec());
        }
        if path.ends_with("/echo") {
            let body = axum::body::to_bytes(request.into_body(), 1 << 20)
                .await
                .unwrap_or_default();
            return (StatusCode::OK, body.to_vec());
        }
        if path.ends_with("/missing") {
            return (StatusCode::NOT_FOUND, b"nope".to_vec());
        }
        if path.ends_with("/boom") {
            return (StatusCode::INTERNAL_SERVER_ERROR, b"boom!".to_vec());
        }
        (StatusCode::OK, b"{}".to_vec())
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(answer);
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// The `plinth` binary: this build's, or `PLINTH_USAGE_BIN` (a copy of it, when a target
/// folder shared with other builds may be rebuilt while the test runs).
fn plinth_bin() -> std::path::PathBuf {
    std::env::var_os("PLINTH_USAGE_BIN").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_BIN_EXE_plinth")),
        std::path::PathBuf::from,
    )
}

/// `plinth up` as a process, on a data directory that outlives it.
struct Platform {
    url: String,
    port: u16,
    data: tempfile::TempDir,
    flush_secs: u64,
    child: Option<Child>,
}

impl Platform {
    async fn start(flush_secs: u64) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let mut platform = Self {
            url: format!("http://127.0.0.1:{port}"),
            port,
            data: tempfile::tempdir().unwrap(),
            flush_secs,
            child: None,
        };
        platform.run().await;
        platform
    }

    async fn run(&mut self) {
        let log = std::fs::File::create(self.data.path().join("plinth-up.log")).unwrap();
        let child = Command::new(plinth_bin())
            .args(["up", "--port", &self.port.to_string(), "--data-dir"])
            .arg(self.data.path().join("data"))
            .env("PLINTH_JWT_SECRET", SECRET)
            .env("PLINTH_USAGE_FLUSH_SECS", self.flush_secs.to_string())
            .env("PLINTH_GATEWAY_THREADS", "2")
            .env_remove("PLINTH_METERING")
            .env_remove("PLINTH_USAGE_PRICES")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("plinth up starts");
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE;
        let client = reqwest::Client::new();
        loop {
            let health = client.get(format!("{}/health", self.url)).send().await;
            if health.is_ok_and(|h| h.status().is_success()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "plinth up did not answer:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.data.path().join("plinth-up.log")).unwrap_or_default()
    }

    fn signal(&mut self, signal: Signal) -> Child {
        let child = self.child.take().expect("running");
        if let Some(pid) = i32::try_from(child.id()).ok().and_then(Pid::from_raw) {
            let _ = kill_process(pid, signal);
        }
        child
    }

    /// SIGTERM: `plinth up`'s graceful stop; waits until it has exited.
    fn stop(&mut self) {
        let mut child = self.signal(Signal::TERM);
        assert!(child.wait().unwrap().success(), "{}", self.log());
    }

    /// SIGKILL: nothing is flushed on the way out.
    fn kill(&mut self) {
        let _ = self.signal(Signal::KILL).wait();
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.kill();
        }
    }
}

struct Api {
    url: String,
    http: reqwest::Client,
}

impl Api {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.unwrap();
        let status = answer.status().as_u16();
        let text = answer.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn ok(&self, method: reqwest::Method, path: &str, token: &str, body: Value) -> Value {
        let (status, answer) = self.send(method, path, token, Some(body)).await;
        assert!((200..300).contains(&status), "{path}: {status} {answer}");
        answer
    }
}

/// Module `meter` installed at `backend`, tenants `acme` (basic) and `globex` (free) with it
/// enabled; returns the platform admin's token and the module's API key.
async fn set_up(api: &Api, backend: &str) -> (String, String) {
    let admin = token("operator", None, &["platform:admin"]);
    let manifest = json!({
        "name": "meter", "display_name": "Meter", "version": "1.0.0",
        "backend": {"type": "microservice", "api_prefix": "/api/v1/meter", "health_check": "/health"},
        "permissions": ["meter:items.read"],
        "routes": [{"path": "/{proxy+}", "methods": ["ANY"], "permission": "meter:items.read"}],
        "events": {"publishes": ["meter.pinged"],
                   "subscribes": [{"name": "pinged", "pattern": {"detail-type": ["meter.pinged"]},
                                   "path": "/_plinth/events/pinged"}]}
    });
    use reqwest::Method;
    api.ok(Method::POST, "/api/v1/modules", &admin, manifest)
        .await;
    api.ok(
        Method::POST,
        "/api/v1/modules/meter/install",
        &admin,
        json!({"version": "1.0.0", "endpoint": backend}),
    )
    .await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (_, installation) = api
            .send(
                Method::GET,
                "/api/v1/modules/meter/installation",
                &admin,
                None,
            )
            .await;
        if installation["status"] == "installed" {
            break;
        }
        assert!(Instant::now() < deadline, "not installed: {installation}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (tenant, tier) in [("acme", "basic"), ("globex", "free")] {
        let body = json!({"id": tenant, "name": tenant, "subscription_tier": tier});
        api.ok(Method::POST, "/api/v1/tenants", &admin, body).await;
        let path = format!("/api/v1/tenants/{tenant}/modules/meter");
        api.ok(Method::PUT, &path, &admin, json!({})).await;
    }
    let key = api
        .ok(
            Method::POST,
            "/api/v1/modules/meter/api-keys",
            &admin,
            json!({}),
        )
        .await;
    (admin, key["key"].as_str().unwrap().to_owned())
}

/// What the load below must count for acme's `meter`.
struct Expected {
    requests: u64,
    errors_4xx: u64,
    errors_5xx: u64,
    request_bytes: u64,
    response_bytes: u64,
    events_published: u64,
    /// Per quantile: the latencies' lower bound (the backend's sleep) and upper bound (the
    /// time the client saw), in ms.
    bounds: Vec<(&'static str, f64, f64)>,
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// A known load through the gateway for tenant acme: requests of known latency, size and
/// status, a chunked upload (hyper's path), and events published with the module's key.
async fn load(api: &Api, key: &str) -> Expected {
    let user = token("alice", Some("acme"), &["tenant:admin"]);
    let url = |rest: &str| format!("{}/api/v1/meter/{rest}", api.url);
    let (mut slept, mut seen) = (Vec::new(), Vec::new());
    let sleeps = std::iter::repeat_n(10u64, 20)
        .chain(std::iter::repeat_n(30, 18))
        .chain(std::iter::repeat_n(80, 2));
    for ms in sleeps {
        let started = Instant::now();
        let answer = api
            .http
            .get(url(&format!("sleep/{ms}")))
            .bearer_auth(&user)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.bytes().await.unwrap().len(), 5);
        seen.push(started.elapsed().as_secs_f64() * 1e3);
        slept.push(ms as f64);
    }
    for _ in 0..5 {
        let answer = api
            .http
            .post(url("echo"))
            .bearer_auth(&user)
            .body(vec![b'x'; 1000])
            .send()
            .await
            .unwrap();
        assert_eq!(answer.bytes().await.unwrap().len(), 1000);
    }
    // A chunked upload: the relay hands it to hyper's path, which counts what arrives.
    let head = format!(
        "POST /api/v1/meter/echo HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {user}\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n",
        api.url.trim_start_matches("http://")
    );
    let request = format!(
        "{head}3c\r\n{}\r\n28\r\n{}\r\n0\r\n\r\n",
        "y".repeat(60),
        "z".repeat(40)
    );
    let mut stream = tokio::net::TcpStream::connect(api.url.trim_start_matches("http://"))
        .await
        .unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.ends_with(&format!("{}{}", "y".repeat(60), "z".repeat(40))),
        "{response}"
    );
    for (path, status) in [
        ("missing", 404),
        ("missing", 404),
        ("missing", 404),
        ("boom", 500),
        ("boom", 500),
    ] {
        let answer = api
            .http
            .get(url(path))
            .bearer_auth(&user)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), status);
        answer.bytes().await.unwrap();
    }
    // Refused by the gateway's decision (no token): not the tenant's use, not counted.
    let refused = api.http.get(url("sleep/0")).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    for n in 0..3 {
        let event = json!({"id": format!("e-{n}"), "source": "plinth.module.meter",
                           "detail-type": "meter.pinged", "time": "2026-12-07T08:00:00Z",
                           "detail": {"tenant_id": "acme"}});
        let answer = api
            .http
            .post(format!("{}/api/v1/events", api.url))
            .header("x-module-api-key", key)
            .json(&event)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 202, "{}", answer.text().await.unwrap());
    }
    slept.sort_by(f64::total_cmp);
    seen.sort_by(f64::total_cmp);
    let bounds = [("p50", 0.5), ("p95", 0.95), ("p99", 0.99)]
        .into_iter()
        .map(|(name, q)| (name, quantile(&slept, q), quantile(&seen, q)))
        .collect();
    Expected {
        requests: 40 + 5 + 1 + 5,
        errors_4xx: 3,
        errors_5xx: 2,
        request_bytes: 5 * 1000 + 100,
        response_bytes: 40 * 5 + 5 * 1000 + 100 + 3 * 4 + 2 * 5,
        events_published: 3,
        bounds,
    }
}

/// acme's usage of `meter` today, once `ready` holds of it (or the patience runs out).
async fn usage_until(api: &Api, token: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, report) = api
            .send(
                reqwest::Method::GET,
                "/api/v1/tenants/acme/usage?module=meter",
                token,
                None,
            )
            .await;
        assert_eq!(status, 200, "{report}");
        let tenant = report["tenants"][0].clone();
        if ready(&tenant) || Instant::now() > deadline {
            return tenant;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn assert_counts(tenant: &Value, expected: &Expected) {
    let total = &tenant["total"];
    let figures = [
        ("requests", expected.requests),
        ("errors_4xx", expected.errors_4xx),
        ("errors_5xx", expected.errors_5xx),
        ("request_bytes", expected.request_bytes),
        ("response_bytes", expected.response_bytes),
        ("events_published", expected.events_published),
        ("events_delivered", expected.events_published),
    ];
    for (name, value) in figures {
        assert_eq!(total[name], value, "{name} in {tenant:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_matches_a_known_load_sent_through_the_gateway_and_prices_it() {
    let backend = backend().await;
    let platform = Platform::start(1).await;
    let api = Api {
        url: platform.url.clone(),
        http: reqwest::Client::new(),
    };
    let (_, key) = set_up(&api, &backend).await;
    let expected = load(&api, &key).await;
    let admin = token("alice", Some("acme"), &["tenant:admin"]);
    let tenant = usage_until(&api, &admin, |t| {
        t["total"]["requests"] == expected.requests && t["total"]["events_delivered"] == 3
    })
    .await;
    assert_counts(&tenant, &expected);
    let latency = &tenant["total"]["latency_ms"];
    for (name, low, high) in &expected.bounds {
        let reported = latency[name].as_f64().unwrap();
        assert!(
            reported >= low * (1.0 - RELATIVE_ERROR) && reported <= high * (1.0 + RELATIVE_ERROR),
            "{name} {reported} ms is not within [{low}, {high}] ms ± 1 %"
        );
    }
    assert_eq!(tenant["tier"], "basic");
    // `plinth usage` prints the same figures, as a table or the API's CSV.
    let cli = |extra: &[&str]| {
        let output = Command::new(plinth_bin())
            .args([
                "usage",
                "--tenant",
                "acme",
                "--granularity",
                "hour",
                "--url",
                &api.url,
                "--token",
                &admin,
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let table = cli(&[]);
    assert!(
        table.contains("meter") && table.contains(&expected.requests.to_string()),
        "{table}"
    );
    assert!(table.contains("USD"), "{table}");
    let csv = cli(&["--csv"]);
    assert!(
        csv.starts_with("tenant,tier,period,module,requests"),
        "{csv}"
    );
    assert!(csv.contains(",basic,") && csv.contains(",meter,"), "{csv}");
    let bill = &tenant["bill"];
    // basic: 2.00 per million requests, 0.10 per GB, 0.05 per thousand events (6 of them).
    let requests = expected.requests as f64 * 2.0 / 1e6;
    assert!(
        (bill["requests"].as_f64().unwrap() - requests).abs() < 1e-6,
        "{bill}"
    );
    assert!(
        (bill["events"].as_f64().unwrap() - 6.0 * 0.05 / 1e3).abs() < 1e-6,
        "{bill}"
    );
    assert_eq!(bill["currency"], "USD");
    // globex sent nothing: the platform admin's report has it at zero.
    let operator = token("operator", None, &["platform:admin"]);
    let (status, every) = api
        .send(
            reqwest::Method::GET,
            "/api/v1/usage?granularity=hour",
            &operator,
            None,
        )
        .await;
    assert_eq!(status, 200, "{every}");
    let globex = every["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tenant"] == "globex")
        .unwrap();
    assert_eq!(globex["total"]["requests"], 0);
    assert_eq!(globex["bill"]["total"], 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenant_s_usage_and_every_tenant_s_are_refused_to_a_tenant_admin() {
    let platform = Platform::start(1).await;
    let api = Api {
        url: platform.url.clone(),
        http: reqwest::Client::new(),
    };
    let globex_admin = token("bob", Some("globex"), &["tenant:admin"]);
    let (status, refused) = api
        .send(
            reqwest::Method::GET,
            "/api/v1/tenants/acme/usage",
            &globex_admin,
            None,
        )
        .await;
    assert_eq!(status, 403, "{refused}");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("not for tenant acme"),
        "{refused}"
    );
    let (status, refused) = api
        .send(reqwest::Method::GET, "/api/v1/usage", &globex_admin, None)
        .await;
    assert_eq!(status, 403, "{refused}");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("platform:admin"),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_parameters_are_checked_and_each_refusal_names_its_parameter() {
    let platform = Platform::start(1).await;
    let api = Api {
        url: platform.url.clone(),
        http: reqwest::Client::new(),
    };
    let operator = token("operator", None, &["platform:admin"]);
    for (query, parameter) in [
        ("from=yesterday", "from"),
        ("to=2026-02-30", "to"),
        ("from=2026-12-05&to=2026-12-01", "from"),
        ("from=2026-01-01&to=2026-12-01&granularity=hour", "to"),
        ("granularity=week", "granularity"),
        ("module=Not_A_Module", "module"),
        ("format=xml", "format"),
        ("colour=blue", "colour"),
    ] {
        let (status, refused) = api
            .send(
                reqwest::Method::GET,
                &format!("/api/v1/usage?{query}"),
                &operator,
                None,
            )
            .await;
        assert_eq!(status, 422, "{query}: {refused}");
        assert_eq!(
            refused["errors"][0]["path"], parameter,
            "{query}: {refused}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushed_usage_survives_a_crash_and_a_restart_and_exports_as_csv() {
    let backend = backend().await;
    let mut platform = Platform::start(1).await;
    let api = Api {
        url: platform.url.clone(),
        http: reqwest::Client::new(),
    };
    let (_, key) = set_up(&api, &backend).await;
    let expected = load(&api, &key).await;
    let admin = token("alice", Some("acme"), &["tenant:admin"]);
    let before = usage_until(&api, &admin, |t| {
        t["total"]["requests"] == expected.requests && t["total"]["events_delivered"] == 3
    })
    .await;
    assert_counts(&before, &expected);
    platform.kill();
    platform.run().await;
    let after = usage_until(&api, &admin, |_| true).await;
    assert_eq!(
        after["total"], before["total"],
        "what was flushed is kept across a crash"
    );

    let answer = api
        .http
        .get(format!(
            "{}/api/v1/tenants/acme/usage?granularity=hour",
            api.url
        ))
        .bearer_auth(&admin)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(
        answer.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = answer.text().await.unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "tenant,tier,period,module,requests,errors_4xx,errors_5xx,request_bytes,response_bytes,\
         events_published,events_delivered,latency_p50_ms,latency_p95_ms,latency_p99_ms"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let requests: u64 = rows.iter().map(|r| r[4].parse::<u64>().unwrap()).sum();
    assert_eq!(requests, expected.requests, "{csv}");
    assert!(
        rows.iter()
            .all(|r| r[0] == "acme" && r[1] == "basic" && r[3] == "meter" && r.len() == 14),
        "{csv}"
    );
    let (status, same) = api
        .send(
            reqwest::Method::GET,
            "/api/v1/tenants/acme/usage?granularity=hour&format=csv",
            &admin,
            None,
        )
        .await;
    assert_eq!((status, same.as_str()), (200, Some(csv.as_str())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_flushes_what_was_counted_since_the_last_flush() {
    let backend = backend().await;
    // No flush would come for an hour: only the stop's writes the figures.
    let mut platform = Platform::start(3600).await;
    let api = Api {
        url: platform.url.clone(),
        http: reqwest::Client::new(),
    };
    let (_, key) = set_up(&api, &backend).await;
    let expected = load(&api, &key).await;
    let admin = token("alice", Some("acme"), &["tenant:admin"]);
    let unflushed = usage_until(&api, &admin, |_| true).await;
    assert_eq!(unflushed["total"]["requests"], 0, "nothing flushed yet");
    platform.stop();
    platform.run().await;
    let after = usage_until(&api, &admin, |_| true).await;
    assert_counts(&after, &expected);
}
