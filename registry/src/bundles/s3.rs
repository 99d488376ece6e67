//! Bundles in an S3 bucket (on AWS): each key an object, stored with its media type and a
//! year's `immutable` cache, so the bucket (or a CloudFront distribution in front of it) can
//! serve them as they are at `PLINTH_BUNDLES_ORIGIN`. Sent by the registry's own small S3
//! client ([`client`]), not the S3 SDK.

mod client;

use async_trait::async_trait;
use aws_config::SdkConfig;

use self::client::S3Client;
use super::{BundleStore, CACHE_CONTROL};
use crate::error::Result;

/// A [`BundleStore`] in the S3 bucket `bucket` (`PLINTH_BUNDLES_BUCKET`).
#[derive(Debug, Clone)]
pub struct S3Bundles {
    client: S3Client,
    bucket: String,
}

impl S3Bundles {
    /// Honours `AWS_ENDPOINT_URL` (the emulator) through `sdk`; path-style addressing, which
    /// S3 and every emulator answer.
    pub fn new(sdk: &SdkConfig, bucket: impl Into<String>) -> Self {
        Self {
            client: S3Client::new(sdk),
            bucket: bucket.into(),
        }
    }

    /// Creates the bucket (tests; on AWS the stack does).
    pub async fn create_bucket(&self) -> Result<()> {
        self.client.create_bucket(&self.bucket).await
    }
}

#[async_trait]
impl BundleStore for S3Bundles {
    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<()> {
        self.client
            .put_object(&self.bucket, key, body, content_type, CACHE_CONTROL)
            .await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.client.get_object(&self.bucket, key).await
    }

    async fn presigned_get(
        &self,
        key: &str,
        expires: std::time::Duration,
    ) -> Result<Option<String>> {
        self.client
            .presigned_get(&self.bucket, key, expires)
            .await
            .map(Some)
    }
}
