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
