//! A trivial module backend for the gateway benchmark: `200 ok` on every path.
//!
//! `PORT=19001 cargo run --release -p plinth-local --example bench_backend`

use axum::Router;
use axum::routing::any;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = std::env::var("PORT").unwrap_or_else(|_| "19001".into());
    let app = Router::new().fallback(any(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    axum::serve(listener, app).await
}
