//! Shim `ModuleBackend`: **moto cannot run a container** (nor a Lambda module's code), so the
//! cell's module is an HTTP server of its own, installed at its endpoint (`endpoint` of the
//! install request): it answers every hook and health check with 200, and counts the calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use serde_json::json;

pub struct ModuleBackend {
    pub url: String,
    calls: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

impl ModuleBackend {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port for the module");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let app = Router::new().fallback(move || {
            counted.fetch_add(1, Ordering::Relaxed);
            async { axum::Json(json!({"status": "healthy"})) }
        });
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, calls, server }
    }

    /// How many requests (hooks, health checks) reached the module.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }
}

impl Drop for ModuleBackend {
    fn drop(&mut self) {
        self.server.abort();
    }
}
