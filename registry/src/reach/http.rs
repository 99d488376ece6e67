//! [`Reach`] over HTTP.

use async_trait::async_trait;

use super::{Answer, Call, Method, Reach, ReachError};

#[derive(Debug, Clone, Default)]
pub struct HttpReach {
    client: reqwest::Client,
}

#[async_trait]
impl Reach for HttpReach {
    async fn call(&self, call: &Call) -> Result<Answer, ReachError> {
        let request = match call.method {
            Method::Get => self.client.get(&call.url),
            Method::Post => self.client.post(&call.url),
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
