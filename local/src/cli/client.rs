//! What the admin commands share: where Plinth is (`--url`, `--token`), one HTTP client, the
//! problem documents it answers with, and how results are printed (`--output`).

use std::io::{self, Write};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Map, Value};

use super::Exit;

/// The Plinth a command talks to, and how it prints.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// Plinth's base URL (local `plinth up` or a deployed API).
    #[arg(
        long,
        env = "PLINTH_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
    /// Bearer token to call with (see `plinth token`).
    #[arg(long, env = "PLINTH_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// `human` text, or the API's `json` answer for scripts.
    #[arg(long, value_enum, default_value_t = Output::Human, global = true)]
    pub output: Output,
    /// The API's JSON answer, for scripts (the same as `--output json`).
    #[arg(long, global = true)]
    pub json: bool,
}

impl Target {
    /// `--json` wins over `--output`.
    pub fn settle(&mut self) {
        if self.json {
            self.output = Output::Json;
        }
    }
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Short lines for people.
    Human,
    /// The API's JSON answer, pretty-printed.
    Json,
}

/// Why a command did not do what was asked.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// Plinth answered with a problem document (4xx or 5xx): exit status 1.
    Refused {
        status: u16,
        detail: String,
        errors: Vec<String>,
    },
    /// A long operation ran and failed: exit status 1.
    Failed(String),
    /// Plinth could not be reached, or answered something that is not Plinth: exit status 2.
    Unreachable(String),
    /// Bad arguments or unreadable input files: exit status 2.
    Usage(String),
}

impl Failure {
    /// Writes the failure to `err` and gives the exit status it means.
    pub fn report(&self, err: &mut dyn Write) -> io::Result<Exit> {
        match self {
            Failure::Refused {
                status,
                detail,
                errors,
            } => {
                writeln!(err, "error: {detail} (HTTP {status})")?;
                for line in errors {
                    writeln!(err, "  {line}")?;
                }
                Ok(Exit::Problems)
            }
            Failure::Failed(message) => {
                writeln!(err, "error: {message}")?;
                Ok(Exit::Problems)
            }
            Failure::Unreachable(message) | Failure::Usage(message) => {
                writeln!(err, "error: {message}")?;
                Ok(Exit::Failure)
            }
        }
    }

    /// A refusal from a problem document (or whatever body came with the status).
    fn refused(status: u16, body: &Value) -> Self {
        let detail = body["detail"]
            .as_str()
            .or_else(|| body["title"].as_str())
            .map_or_else(
                || format!("Plinth refused the request: {body}"),
                str::to_owned,
            );
        let errors = body["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                format!(
                    "{}: {}",
                    e["path"].as_str().unwrap_or(""),
                    e["message"].as_str().unwrap_or("")
                )
            })
            .collect();
        Failure::Refused {
            status,
            detail,
            errors,
        }
    }
}

/// A successful answer: its status and JSON body (`null` when empty).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

/// An HTTP client for one Plinth.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// A client for `target`; a URL that is not http(s) is a usage error.
    pub fn new(target: &Target) -> Result<Self, Failure> {
        let base = target.url.trim_end_matches('/').to_owned();
        match reqwest::Url::parse(&base) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
            _ => {
                return Err(Failure::Usage(format!(
                    "--url `{}` is not an http(s) URL",
                    target.url
                )));
            }
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| Failure::Usage(format!("cannot make an HTTP client: {e}")))?;
        Ok(Client {
            base,
            token: target.token.clone().filter(|t| !t.is_empty()),
            http,
        })
    }

    pub async fn get(&self, path: &str) -> Result<Answer, Failure> {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Answer, Failure> {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Result<Answer, Failure> {
        self.send(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Result<Answer, Failure> {
        self.send(Method::DELETE, path, None).await
    }

    /// Sends one request; a 4xx/5xx answer is a [`Failure::Refused`].
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, Failure> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| self.unreachable(&e))?;
        let body = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        if status >= 400 {
            if status == 401 && self.token.is_none() {
                let mut failure = Failure::refused(status, &body);
                if let Failure::Refused { errors, .. } = &mut failure {
                    errors.push(
                        "hint: pass --token or set PLINTH_TOKEN (`plinth token --help`)".into(),
                    );
                }
                return Err(failure);
            }
            return Err(Failure::refused(status, &body));
        }
        Ok(Answer { status, body })
    }

    fn unreachable(&self, error: &reqwest::Error) -> Failure {
        let cause = std::error::Error::source(error)
            .map_or_else(|| error.to_string(), |s| format!("{error}: {s}"));
        Failure::Unreachable(format!(
            "cannot reach Plinth at {}: {cause} (is `plinth up` running? set --url or PLINTH_URL)",
            self.base
        ))
    }
}

/// Runs an async command on a small runtime of its own, reporting its failure.
pub fn block_on<F>(err: &mut dyn Write, command: F) -> io::Result<Exit>
where
    F: std::future::Future<Output = Result<Exit, Failure>>,
{
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return Failure::Usage(format!("cannot start: {e}")).report(err),
    };
    match runtime.block_on(command) {
        Ok(exit) => Ok(exit),
        Err(failure) => failure.report(err),
    }
}

/// Prints `body` as JSON, or the `human` text of it.
pub fn print(
    out: &mut dyn Write,
    output: Output,
    body: &Value,
    human: impl FnOnce(&Value) -> String,
) -> Result<(), Failure> {
    let text = match output {
        Output::Json => serde_json::to_string_pretty(body).unwrap_or_default(),
        Output::Human => human(body),
    };
    writeln!(out, "{text}").map_err(|e| Failure::Usage(format!("cannot write output: {e}")))
}

/// `GET path` and print its answer: JSON with `--json`, else `human` of it.
pub fn show(
    target: &Target,
    path: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
    human: impl FnOnce(&Value) -> String,
) -> io::Result<Exit> {
    block_on(err, async {
        let client = Client::new(target)?;
        let answer = client.get(path).await?;
        print(out, target.output, &answer.body, human)?;
        Ok(Exit::Success)
    })
}

/// A name that is not among `known`: a refusal like the API's 404, with the closest name.
pub fn not_found<'a>(
    what: &str,
    wanted: &str,
    known: impl IntoIterator<Item = &'a str>,
) -> Failure {
    let hint = plinth_registry::error::did_you_mean(wanted, known);
    Failure::Failed(format!("{what}{hint}"))
}

/// A `--config` value: a JSON object, or `@file` holding one.
pub fn json_object(flag: &str, text: &str) -> Result<Map<String, Value>, Failure> {
    let (source, json) = match text.strip_prefix('@') {
        Some(path) => {
            let json = std::fs::read_to_string(path)
                .map_err(|e| Failure::Usage(format!("{flag}: cannot read {path}: {e}")))?;
            (path.to_owned(), json)
        }
        None => (flag.to_owned(), text.to_owned()),
    };
    match serde_json::from_str::<Value>(&json) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Failure::Usage(format!(
            "{source}: {flag} must be a JSON object"
        ))),
        Err(e) => Err(Failure::Usage(format!(
            "{source}: {flag} is not valid JSON: {e}"
        ))),
    }
}

/// A path segment, percent-encoded.
pub fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_documents_become_the_detail_and_one_line_per_field() {
        let body = serde_json::json!({
            "detail": "the manifest is not valid",
            "errors": [{"path": "backend.port", "message": "must be 1 to 65535"}]
        });
        let failure = Failure::refused(422, &body);
        let mut err = Vec::new();
        assert_eq!(failure.report(&mut err).unwrap(), Exit::Problems);
        let text = String::from_utf8(err).unwrap();
        assert!(
            text.contains("error: the manifest is not valid (HTTP 422)"),
            "{text}"
        );
        assert!(
            text.contains("  backend.port: must be 1 to 65535"),
            "{text}"
        );
    }

    #[test]
    fn config_values_must_be_objects() {
        assert_eq!(json_object("--config", r#"{"a": 1}"#).unwrap()["a"], 1);
        assert!(
            matches!(json_object("--config", "[1]"), Err(Failure::Usage(m)) if m.contains("JSON object"))
        );
        assert!(
            matches!(json_object("--config", "@/no/such/file"), Err(Failure::Usage(m)) if m.contains("cannot read"))
        );
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(segment("acme-de"), "acme-de");
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn urls_must_be_http() {
        let target = Target {
            url: "ftp://x".into(),
            token: None,
            output: Output::Human,
            json: false,
        };
        assert!(matches!(Client::new(&target), Err(Failure::Usage(_))));
    }
}
