//! The module backend of the reliability drills (`local/tests/drill/`): `plinth up` starts it
//! as a module's `dev_command`, so it is a real child process of the platform. It forwards
//! every request to the drill's control server (`PLINTH_DRILL_CONTROL`), saying which process
//! it is and which API key it was started with, and answers what the control server answers —
//! which may hold a call until the drill has killed the platform.
//!
//! Without `PORT` and `PLINTH_DRILL_CONTROL` it exits at once.

use axum::http::StatusCode;
use serde_json::{Value, json};

fn main() {
    if let (Ok(port), Ok(control)) = (std::env::var("PORT"), std::env::var("PLINTH_DRILL_CONTROL"))
    {
        serve(&port, &control);
    }
}

/// The module backend: forwards every request to the control server, saying which process
/// it is and which key it was started with.
fn serve(port: &str, control: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let module = std::env::var("PLINTH_MODULE").unwrap_or_default();
    let key = std::env::var("PLINTH_API_KEY").unwrap_or_default();
    let base = format!("{control}/calls/{module}");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}"))
            .await
            .expect("the backend's port");
        let client = reqwest::Client::new();
        let forward = move |request: axum::extract::Request| {
            let client = client.clone();
            let url = format!("{base}{}", request.uri().path());
            let key = key.clone();
            async move {
                let body = axum::body::to_bytes(request.into_body(), 1 << 20)
                    .await
                    .unwrap_or_default();
                let answer = client
                    .post(url)
                    .header("x-drill-pid", std::process::id().to_string())
                    .header("x-drill-key", key)
                    .body(body)
                    .send()
                    .await;
                match answer {
                    Ok(answer) => {
                        let status = StatusCode::from_u16(answer.status().as_u16())
                            .unwrap_or(StatusCode::BAD_GATEWAY);
                        let json = answer.json::<Value>().await.unwrap_or(Value::Null);
                        (status, axum::Json(json))
                    }
                    Err(e) => (
                        StatusCode::BAD_GATEWAY,
                        axum::Json(json!({"error": e.to_string()})),
                    ),
                }
            }
        };
        let app = axum::Router::new().fallback(forward);
        axum::serve(listener, app).await.expect("serves");
    });
}
