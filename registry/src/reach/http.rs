//! [`Reach`] over HTTP.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;

use super::{Answer, Call, Method, Reach, ReachError};

/// Calls modules over HTTP. Its client (and the system's root certificates it loads) is made
/// on the first call: a Lambda function that reaches no module over HTTP — most invocations
/// of most functions — does not pay for it in its cold start.
#[derive(Debug, Clone, Default)]
pub struct HttpReach {
    client: Arc<OnceLock<reqwest::Client>>,
}

impl HttpReach {
    fn client(&self) -> &reqwest::Client {
        self.client.get_or_init(reqwest::Client::new)
    }
}

#[async_trait]
impl Reach for HttpReach {
    async fn call(&self, call: &Call) -> Result<Answer, ReachError> {
        let request = match call.method {
            Method::Get => self.client().get(&call.url),
            Method::Post => self.client().post(&call.url),
        };
        let request = match &call.json {
            Some(json) => request.json(json),
            None => request,
        };
        let response = request.timeout(call.timeout).send().await.map_err(|e| {
            if e.is_timeout() {
                ReachError::TimedOut(call.timeout.as_secs_f32())
            } else {
                ReachError::Unreachable(format!("cannot reach {}: {e}", call.url))
            }
        })?;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        Ok(Answer { status, body })
    }
}
