//! The cold-start baseline of BENCHMARKS.md ("Cold starts, side by side"): the smallest axum
//! application served by `lambda_http` — one route, no AWS client, no logging. Not a platform
//! function: a binary of this package so that `cargo lambda build -p plinth-functions` builds
//! it with the functions (same profile, target and zip), and `functions/bench/exec_to_ready.py`
//! times it in the same run.

use axum::Router;
use axum::routing::get;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let app = Router::new().route("/", get(|| async { "ok" }));
    lambda_http::run(app).await
}
