//! A platform started in this process on a fresh data folder, served until dropped.

use std::path::PathBuf;

use plinth_local::platform::{self, IdentitySettings, Options};

/// The repository's root (the examples live there).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("local/ has a parent")
        .to_path_buf()
}

/// `plinth up` on port 0 and a fresh data folder.
pub struct Platform {
    pub data: tempfile::TempDir,
    pub url: String,
    pub demo: platform::Demo,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Platform {
    pub async fn start() -> Self {
        Self::start_with(IdentitySettings::default()).await
    }

    /// `plinth up` on port 0 and a fresh data folder, users signing in as `identity` says.
    pub async fn start_with(identity: IdentitySettings) -> Self {
        let data = tempfile::tempdir().expect("a temporary folder");
        let options = Options {
            port: 0,
            data_dir: data.path().to_path_buf(),
            demo: false,
            aws: None,
            working_dir: workspace_root(),
        };
        let running = platform::start_with(&options, identity)
            .await
            .expect("the platform starts");
        let url = format!("http://{}", running.addr);
        let demo = running.demo();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(running.serve(async {
            let _ = stopped.await;
        }));
        Self {
            data,
            url,
            demo,
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// Stops serving and waits for the module backends to stop.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("joined").expect("served");
        }
    }
}

/// A client that neither follows redirects nor keeps cookies: each test says what it sends.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client")
}

/// The `name=value` part of a response's `Set-Cookie`.
pub fn cookie_of(response: &reqwest::Response) -> String {
    let set = response
        .headers()
        .get("set-cookie")
        .expect("a Set-Cookie")
        .to_str()
        .unwrap();
    set.split(';').next().unwrap().to_owned()
}

/// The platform's API as one of the development users, through the console's `/console/api`
/// (the way the shell calls it): for a test's setup, what a user would have done elsewhere.
pub struct SignedIn {
    url: String,
    cookie: String,
}

impl SignedIn {
    pub async fn as_user(url: &str, user: &str) -> Self {
        let response = client()
            .post(format!("{url}/console/session"))
            .json(&serde_json::json!({"user": user}))
            .send()
            .await
            .expect("the sign-in answers");
        assert!(response.status().is_success(), "{user} signs in");
        Self {
            url: url.to_owned(),
            cookie: cookie_of(&response),
        }
    }

    /// `method` on `/api{path}` with `body`; the answer's status and JSON (null when none).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let mut request = client()
            .request(method, format!("{}/console/api{path}", self.url))
            .header("cookie", &self.cookie);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the API answers");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or_default())
    }
}
