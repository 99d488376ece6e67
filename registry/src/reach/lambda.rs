//! [`Reach`] through Lambda `Invoke`: a Lambda module is asked exactly as API Gateway's HTTP
//! API asks it (payload version 2.0), so its own router serves hooks and health checks, and
//! its answer (`statusCode`, `body`) is read the same way.
//!
//! The function is invoked by its name (the last part of its ARN): the platform only calls
//! functions its installer created, in its own account and region.

use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_lambda::Client;
use aws_sdk_lambda::primitives::Blob;
use base64::Engine;
use serde_json::{Value, json};

use super::{Answer, Call, LAMBDA_SCHEME, Reach, ReachError};

#[derive(Debug, Clone)]
pub struct LambdaReach {
    client: Client,
}

impl LambdaReach {
    #[must_use]
    pub fn new(sdk: &SdkConfig) -> Self {
        Self {
            client: Client::new(sdk),
        }
    }
}

/// `lambda:{arn}{path}` → (function name, path). The ARN has no `/`; the path starts at the
/// first one (`/` when there is none).
pub fn target(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix(LAMBDA_SCHEME)?;
    let (arn, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, "/"),
    };
    let name = match arn.split_once(":function:") {
        Some((_, function)) => function.split(':').next().unwrap_or(function),
        None => arn,
    };
    (!name.is_empty()).then_some((name, path))
}

/// The request API Gateway's HTTP API would send the function for `call` on `path`.
pub fn http_api_event(call: &Call, path: &str) -> Value {
    let (raw_path, query) = path.split_once('?').unwrap_or((path, ""));
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut headers = json!({"user-agent": "plinth", "host": "plinth.internal"});
    if call.json.is_some() {
        headers["content-type"] = json!("application/json");
    }
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "plinth",
            "apiId": "plinth",
            "domainName": "plinth.internal",
            "domainPrefix": "plinth",
            "http": {
                "method": call.method.as_str(),
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "plinth",
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": "$default",
            "stage": "$default",
            "time": crate::clock::now(),
            "timeEpoch": millis,
        },
        "body": call.json.as_ref().map(Value::to_string),
        "isBase64Encoded": false,
    })
}

/// The function's answer, as API Gateway reads it: a proxy response, or (as API Gateway does
/// for a payload without `statusCode`) a 200 with the payload as its body.
fn answer(payload: &[u8]) -> Result<Answer, ReachError> {
    let value: Value = serde_json::from_slice(payload)
        .map_err(|e| ReachError::Unreachable(format!("the function answered no JSON ({e})")))?;
    let Some(status) = value.get("statusCode").and_then(Value::as_u64) else {
        return Ok(Answer {
            status: 200,
            body: value.to_string(),
        });
    };
    let text = value
        .get("body")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let body = if value.get("isBase64Encoded") == Some(&Value::Bool(true)) {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| {
                ReachError::Unreachable(format!("the function's body is not base64: {e}"))
            })?;
        String::from_utf8_lossy(&bytes).into_owned()
    } else {
        text.to_owned()
    };
    Ok(Answer {
        status: u16::try_from(status).unwrap_or(502),
        body,
    })
}

#[async_trait]
impl Reach for LambdaReach {
    async fn call(&self, call: &Call) -> Result<Answer, ReachError> {
        let (function, path) = target(&call.url)
            .ok_or_else(|| ReachError::Unreachable(format!("`{}` names no function", call.url)))?;
        let payload = serde_json::to_vec(&http_api_event(call, path)).unwrap_or_default();
        let invoke = self
            .client
            .invoke()
            .function_name(function)
            .payload(Blob::new(payload))
            .send();
        let output = tokio::time::timeout(call.timeout, invoke)
            .await
            .map_err(|_| ReachError::TimedOut(call.timeout.as_secs_f32()))?
            .map_err(|e| {
                ReachError::Unreachable(format!(
                    "cannot invoke {function}: {}",
                    aws_sdk_lambda::error::DisplayErrorContext(e)
                ))
            })?;
        let payload = output.payload.map(Blob::into_inner).unwrap_or_default();
        if let Some(error) = output.function_error {
            let detail: Value = serde_json::from_slice(&payload).unwrap_or(Value::Null);
            let message = detail
                .get("errorMessage")
                .and_then(Value::as_str)
                .unwrap_or("no message");
            return Err(ReachError::Unreachable(format!(
                "{function} failed ({error}): {message}"
            )));
        }
        answer(&payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lambda_url_names_the_function_and_the_path() {
        let arn = "arn:aws:lambda:eu-west-1:123456789012:function:plinth-financial";
        assert_eq!(
            target(&format!("lambda:{arn}/hooks/post-install")),
            Some(("plinth-financial", "/hooks/post-install"))
        );
        assert_eq!(
            target(&format!("lambda:{arn}:live")),
            Some(("plinth-financial", "/"))
        );
        assert_eq!(target("lambda:"), None);
        assert_eq!(target("http://x/health"), None);
    }

    #[test]
    fn an_answer_is_read_as_api_gateway_reads_it() {
        let proxy = br#"{"statusCode": 409, "body": "{\"reason\":\"no\"}"}"#;
        assert_eq!(
            answer(proxy).unwrap(),
            Answer {
                status: 409,
                body: r#"{"reason":"no"}"#.into()
            }
        );
        let encoded = br#"{"statusCode": 200, "body": "b2s=", "isBase64Encoded": true}"#;
        assert_eq!(answer(encoded).unwrap().body, "ok");
        assert_eq!(answer(br#"{"allow": true}"#).unwrap().status, 200);
        assert!(answer(b"not json").is_err());
    }
}
