//! Bundles in an S3 bucket (on AWS): each key an object, stored with its media type and a
//! year's `immutable` cache, so the bucket (or a CloudFront distribution in front of it) can
//! serve them as they are at `PLINTH_BUNDLES_ORIGIN`.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;

use super::{BundleStore, CACHE_CONTROL};
use crate::aws::describe;
use crate::error::{Error, Result};

/// A [`BundleStore`] in the S3 bucket `bucket` (`PLINTH_BUNDLES_BUCKET`).
#[derive(Debug, Clone)]
pub struct S3Bundles {
    client: Client,
    bucket: String,
}

impl S3Bundles {
    /// Honours `AWS_ENDPOINT_URL` (the emulator) through `sdk`; path-style addressing, which
    /// S3 and every emulator answer.
    pub fn new(sdk: &SdkConfig, bucket: impl Into<String>) -> Self {
        let config = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build();
        Self {
            client: Client::from_conf(config),
            bucket: bucket.into(),
        }
    }

    /// Creates the bucket (tests; on AWS the stack does).
    pub async fn create_bucket(&self) -> Result<()> {
        self.client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                Error::unavailable(describe(format!("creating bucket {}", self.bucket), &e))
            })
    }
}

#[async_trait]
impl BundleStore for S3Bundles {
    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<()> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .cache_control(CACHE_CONTROL)
            .body(ByteStream::from(body))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                Error::unavailable(describe(format!("storing s3://{}/{key}", self.bucket), &e))
            })
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let answer = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        let object = match answer {
            Ok(object) => object,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => {
                return Err(Error::unavailable(describe(
                    format!("reading s3://{}/{key}", self.bucket),
                    &e,
                )));
            }
        };
        let body = object.body.collect().await.map_err(|e| {
            Error::unavailable_because(format!("reading s3://{}/{key}", self.bucket), e)
        })?;
        Ok(Some(body.into_bytes().to_vec()))
    }

    async fn presigned_get(
        &self,
        key: &str,
        expires: std::time::Duration,
    ) -> Result<Option<String>> {
        let what = || format!("signing a link to s3://{}/{key}", self.bucket);
        let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(expires)
            .map_err(|e| Error::internal_because(what(), e))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| Error::unavailable(describe(what(), &e)))?;
        Ok(Some(request.uri().to_owned()))
    }
}
