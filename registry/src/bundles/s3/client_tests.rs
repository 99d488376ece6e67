//! The S3 client: its signatures against S3's documented examples (the same bytes S3 itself
//! checks), and what it sends and makes of S3's answers, through a stub connector.

use std::collections::VecDeque;

use aws_config::Region;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_runtime_api::client::http::HttpConnectorFuture;
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::http::StatusCode;

use super::*;

/// 2013-05-24T00:00:00Z, the time of S3's SigV4 examples.
fn example_time() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600)
}

/// The credentials of S3's SigV4 examples, with `token` when temporary.
fn example_identity(token: Option<&str>) -> Identity {
    Credentials::new(
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        token.map(str::to_owned),
        None,
        "example",
    )
    .into()
}

fn authorization<B>(request: &http::Request<B>) -> &str {
    request.headers()["authorization"].to_str().unwrap()
}

// https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html, "GET Object"
#[test]
fn a_get_is_signed_as_s3_s_documented_example() {
    let mut request = http::Request::get("https://examplebucket.s3.amazonaws.com/test.txt")
        .header("range", "bytes=0-9")
        .body(())
        .unwrap();
    sign_request(
        &mut request,
        b"",
        &example_identity(None),
        "us-east-1",
        example_time(),
    )
    .unwrap();
    assert_eq!(
        authorization(&request),
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
         SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
         Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    );
}

// The same page, "PUT Object": its key `test$file.text` is signed as `test%24file.text`.
#[test]
fn a_put_is_signed_as_s3_s_documented_example_with_its_key_encoded() {
    let url = format!(
        "https://examplebucket.s3.amazonaws.com/{}",
        encode_key("test$file.text")
    );
    let mut request = http::Request::put(url)
        .header("date", "Fri, 24 May 2013 00:00:00 GMT")
        .header("x-amz-storage-class", "REDUCED_REDUNDANCY")
        .body(())
        .unwrap();
    sign_request(
        &mut request,
        b"Welcome to Amazon S3.",
        &example_identity(None),
        "us-east-1",
        example_time(),
    )
    .unwrap();
    assert_eq!(
        authorization(&request),
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
         SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, \
         Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
    );
}

// https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
#[test]
fn a_presigned_link_is_s3_s_documented_example_link() {
    let link = presign(
        "https://examplebucket.s3.amazonaws.com/test.txt",
        &example_identity(None),
        "us-east-1",
        example_time(),
        Duration::from_secs(86_400),
    )
    .unwrap();
    assert_eq!(
        link,
        "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256\
         &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
         &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
         &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    );
}

#[test]
fn a_presigned_link_carries_and_signs_the_session_token_of_temporary_credentials() {
    let sign_with = |token| {
        presign(
            "https://s3.eu-west-1.amazonaws.com/bundles/a.js",
            &example_identity(token),
            "eu-west-1",
            example_time(),
            Duration::from_secs(300),
        )
        .unwrap()
    };
    let link = sign_with(Some("to/ken+1="));
    assert!(
        link.contains("&X-Amz-Security-Token=to%2Fken%2B1%3D"),
        "{link}"
    );
    let signature = |link: &str| link.split("X-Amz-Signature=").nth(1).unwrap().to_owned();
    assert_ne!(
        signature(&link),
        signature(&sign_with(None)),
        "the token is signed"
    );
}

#[test]
fn a_key_is_encoded_once_segment_by_segment_keeping_its_slashes() {
    assert_eq!(
        encode_key("bundles/ledger/1.0.0+build.5/0a1b/lib/a b~c%.js"),
        "bundles/ledger/1.0.0%2Bbuild.5/0a1b/lib/a%20b~c%25.js"
    );
}

/// A connector that answers from a list (200 with no body once it is empty) and keeps what it
/// was sent.
#[derive(Debug, Default)]
struct Stub {
    answers: Mutex<VecDeque<(u16, &'static str)>>,
    sent: Mutex<Vec<Sent>>,
}

#[derive(Debug, Clone)]
struct Sent {
    method: String,
    uri: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Sent {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone)]
struct StubConnector(Arc<Stub>);

impl HttpConnector for StubConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        self.0.sent.lock().unwrap().push(Sent {
            method: request.method().to_owned(),
            uri: request.uri().to_owned(),
            headers: request
                .headers()
                .iter()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect(),
            body: request.body().bytes().unwrap_or_default().to_vec(),
        });
        let (status, body) = self
            .0
            .answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or((200, ""));
        let status = StatusCode::try_from(status).unwrap();
        HttpConnectorFuture::ready(Ok(HttpResponse::new(status, SdkBody::from(body))))
    }
}

/// A client in eu-west-1 at an emulator's endpoint, with a session token, whose connector
/// answers `answers`.
fn stubbed(answers: &[(u16, &'static str)]) -> (S3Client, Arc<Stub>) {
    stubbed_in(Some("eu-west-1"), answers)
}

fn stubbed_in(region: Option<&str>, answers: &[(u16, &'static str)]) -> (S3Client, Arc<Stub>) {
    let credentials = Credentials::new("AKID", "secret", Some("token".into()), None, "test");
    let sdk = SdkConfig::builder()
        .region(region.map(|r| Region::new(r.to_owned())))
        .endpoint_url("http://s3.test:4566/")
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(1)),
        )
        .build();
    let stub = Arc::new(Stub {
        answers: Mutex::new(answers.iter().copied().collect()),
        sent: Mutex::default(),
    });
    let connector = SharedHttpConnector::new(StubConnector(stub.clone()));
    (S3Client::with_connector(&sdk, connector), stub)
}

fn sent(stub: &Stub) -> Vec<Sent> {
    stub.sent.lock().unwrap().clone()
}

const NO_SUCH_KEY: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NoSuchKey</Code>\
    <Message>The specified key does not exist.</Message></Error>";
const NO_SUCH_BUCKET: &str = "<Error><Code>NoSuchBucket</Code>\
    <Message>The specified bucket does not exist</Message></Error>";
const SLOW_DOWN: &str = "<Error><Code>SlowDown</Code><Message>Please reduce your request \
    rate.</Message></Error>";
const ACCESS_DENIED: &str = "<Error><Code>AccessDenied</Code><Message>Access Denied &amp; \
    logged</Message></Error>";

#[tokio::test]
async fn a_put_sends_its_media_type_and_cache_control_signed_with_the_session_token_path_style() {
    let (client, stub) = stubbed(&[]);
    client
        .put_object(
            "plinth-bundles",
            "bundles/ledger/1.0.0+b/lib/a b.js",
            b"export {}".to_vec(),
            "text/javascript; charset=utf-8",
            "public, max-age=31536000, immutable",
        )
        .await
        .unwrap();
    let sent = sent(&stub);
    assert_eq!(sent.len(), 1);
    let put = &sent[0];
    assert_eq!(put.method, "PUT");
    assert_eq!(
        put.uri,
        "http://s3.test:4566/plinth-bundles/bundles/ledger/1.0.0%2Bb/lib/a%20b.js"
    );
    assert_eq!(put.body, b"export {}");
    assert_eq!(
        put.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(
        put.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(put.header("x-amz-security-token"), Some("token"));
    let authorization = put.header("authorization").unwrap();
    assert!(
        authorization.contains("/eu-west-1/s3/aws4_request")
            && authorization.contains(
                "SignedHeaders=cache-control;content-length;content-type;host;\
                 x-amz-content-sha256;x-amz-date;x-amz-security-token,"
            ),
        "{authorization}"
    );
}

#[tokio::test]
async fn a_missing_key_is_none_but_a_missing_bucket_is_an_error_naming_it() {
    let (client, stub) = stubbed(&[(200, "bytes"), (404, NO_SUCH_KEY), (404, NO_SUCH_BUCKET)]);
    assert_eq!(
        client.get_object("b", "k.js").await.unwrap(),
        Some(b"bytes".to_vec())
    );
    assert_eq!(client.get_object("b", "gone.js").await.unwrap(), None);
    let error = client.get_object("b", "k.js").await.unwrap_err();
    assert_eq!(error.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        error.to_string(),
        "reading s3://b/k.js: NoSuchBucket: The specified bucket does not exist"
    );
    assert_eq!(sent(&stub)[0].method, "GET");
}

#[tokio::test]
async fn s3_slowing_down_is_tried_again_and_a_refusal_is_not() {
    let (client, stub) = stubbed(&[(503, SLOW_DOWN), (200, ""), (403, ACCESS_DENIED)]);
    client
        .put_object("b", "k.js", b"x".to_vec(), "text/javascript", "no-cache")
        .await
        .unwrap();
    assert_eq!(sent(&stub).len(), 2, "tried again after SlowDown");
    let error = client
        .put_object("b", "k.js", b"x".to_vec(), "text/javascript", "no-cache")
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "storing s3://b/k.js: AccessDenied: Access Denied & logged"
    );
    assert_eq!(sent(&stub).len(), 3, "a refusal is not tried again");
}

#[tokio::test]
async fn s3_busy_past_the_configured_attempts_is_an_error_saying_so() {
    let (client, stub) = stubbed(&[(503, SLOW_DOWN), (503, SLOW_DOWN), (503, SLOW_DOWN)]);
    let error = client.get_object("b", "k.js").await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "reading s3://b/k.js: SlowDown: Please reduce your request rate."
    );
    assert_eq!(sent(&stub).len(), 3);
}

#[tokio::test]
async fn a_bucket_outside_us_east_1_is_created_naming_its_region() {
    let (client, stub) = stubbed(&[]);
    client.create_bucket("plinth-bundles").await.unwrap();
    let sent = sent(&stub);
    assert_eq!(
        (sent[0].method.as_str(), sent[0].uri.as_str()),
        ("PUT", "http://s3.test:4566/plinth-bundles")
    );
    let body = String::from_utf8(sent[0].body.clone()).unwrap();
    assert!(
        body.contains("<LocationConstraint>eu-west-1</LocationConstraint>"),
        "{body}"
    );
}

#[tokio::test]
async fn a_link_for_longer_than_seven_days_is_refused_saying_how_long_a_link_lasts() {
    let (client, _) = stubbed(&[]);
    let error = client
        .presigned_get("b", "k.js", Duration::from_secs(8 * 24 * 60 * 60))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "signing a link to s3://b/k.js: a link lasts from 1 s to 7 days, not 691200 s"
    );
    let link = client
        .presigned_get("b", "k.js", Duration::from_secs(300))
        .await
        .unwrap();
    assert!(
        link.starts_with("http://s3.test:4566/b/k.js?X-Amz-Algorithm=AWS4-HMAC-SHA256&"),
        "{link}"
    );
}

#[tokio::test]
async fn without_a_region_a_call_is_refused_naming_aws_region() {
    let (client, stub) = stubbed_in(None, &[]);
    let error = client.get_object("b", "k.js").await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "reading s3://b/k.js: no AWS region is set (AWS_REGION)"
    );
    assert!(sent(&stub).is_empty());
}
