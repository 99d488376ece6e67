//! Shim `ModuleBackend`: **moto cannot run a container** (nor a Lambda module's code), so the
//! cell's module is an HTTP server of its own, installed at its endpoint (`endpoint` of the
//! install request): it answers every hook and health check with 200, and counts the calls.
//! It can stop answering (its port closed, as a task that died) and come back at the same
//! address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct ModuleBackend {
    pub url: String,
    address: SocketAddr,
    calls: Arc<AtomicUsize>,
    server: Option<Server>,
}

/// The server while it answers.
struct Server {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Server {
    fn start(listener: TcpListener, calls: Arc<AtomicUsize>) -> Self {
        let app = Router::new().fallback(move || {
            calls.fetch_add(1, Ordering::Relaxed);
            async { axum::Json(json!({"status": "healthy"})) }
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Self { stop, task }
    }
}

impl ModuleBackend {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port for the module");
        let address = listener.local_addr().expect("its address");
        let calls = Arc::new(AtomicUsize::new(0));
        let server = Server::start(listener, calls.clone());
        Self {
            url: format!("http://{address}"),
            address,
            calls,
            server: Some(server),
        }
    }

    /// Stops answering: the port is closed and open connections are shut.
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = server.stop.send(());
            let task = server.task;
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }

    /// Answers again, at the same address.
    pub async fn resume(&mut self) {
        if self.server.is_none() {
            let listener = TcpListener::bind(self.address)
                .await
                .unwrap_or_else(|e| panic!("the module's address {} again: {e}", self.address));
            self.server = Some(Server::start(listener, self.calls.clone()));
        }
    }

    /// How many requests (hooks, health checks) reached the module.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }
}

impl Drop for ModuleBackend {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            server.task.abort();
        }
    }
}
