//! Container images in ECR: the image references manifests use ([`ImageRef`]), and the
//! EventBridge "ECR Image Action" event ([`EcrImageAction`]) that tells the platform a module
//! team pushed a tag, so the digest can be recorded against the matching published version
//! ([`image_pushed`]).
//!
//! The deployers pin images through [`EcrImages`]: a tag is resolved to the digest it points
//! at, so what runs cannot change under a moving tag.
//!
//! A module image may carry its Plinth manifest: the OCI manifest's annotation
//! [`MANIFEST_ANNOTATION`] holds the manifest JSON in base64, as
//! `docker buildx build --annotation "manifest:dev.plinth.manifest=$(base64 -w0 manifest.json)"`
//! writes it. [`PushedImages`] reads it back (ECR `BatchGetImage`), so a push can publish.

use std::fmt;

use async_trait::async_trait;
#[cfg(feature = "aws")]
use aws_config::SdkConfig;
#[cfg(feature = "aws")]
use aws_sdk_ecr::error::{ProvideErrorMetadata, SdkError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::DeployError;
#[cfg(feature = "aws")]
use super::ecs::aws_error;

/// `source` of every ECR event.
pub const ECR_SOURCE: &str = "aws.ecr";

/// `detail-type` of a push or delete of an image.
pub const IMAGE_ACTION: &str = "ECR Image Action";

/// An image reference as a manifest's `backend.image` writes it: `repository:tag` or
/// `repository@sha256:…`, optionally behind a registry host
/// (`123456789012.dkr.ecr.eu-west-1.amazonaws.com/financial:1.2.0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry host, when the reference names one.
    pub registry: Option<String>,
    /// Repository name within the registry, e.g. `plinth/financial`.
    pub repository: String,
    /// The tag or digest the reference points at.
    pub target: ImageTarget,
}

/// What an [`ImageRef`] points at within its repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageTarget {
    /// A tag, which can move: resolved to a digest before anything runs.
    Tag(String),
    /// A digest, `sha256:<64 hex>`: the image itself.
    Digest(String),
}

/// Why a text is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{image}` is not an image reference: {reason}")]
pub struct ImageRefError {
    /// The text given.
    pub image: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl ImageRef {
    /// Parses `[host/]repository:tag` or `[host/]repository@sha256:<64 hex>`. The first path
    /// segment is a registry host when it contains a `.` or a `:`, or is `localhost` (Docker's
    /// rule).
    ///
    /// # Errors
    /// [`ImageRefError`] when there is no tag or digest, or a part is empty.
    pub fn parse(image: &str) -> Result<Self, ImageRefError> {
        let fail = |reason| ImageRefError {
            image: image.to_owned(),
            reason,
        };
        let (name, target) = if let Some((name, digest)) = image.split_once('@') {
            let hex = digest.strip_prefix("sha256:").unwrap_or_default();
            if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(fail("a digest is `sha256:` and 64 hex digits"));
            }
            (name, ImageTarget::Digest(digest.to_owned()))
        } else {
            let name_start = image.rfind('/').map_or(0, |slash| slash + 1);
            let colon = image[name_start..]
                .rfind(':')
                .ok_or_else(|| fail("expected `repository:tag`, like `financial:1.2.0`"))?;
            let (name, tag) = image.split_at(name_start + colon);
            (name, ImageTarget::Tag(tag[1..].to_owned()))
        };
        if matches!(&target, ImageTarget::Tag(tag) if tag.is_empty()) {
            return Err(fail("the tag is empty"));
        }
        let (registry, repository) = match name.split_once('/') {
            Some((host, rest))
                if host.contains('.') || host.contains(':') || host == "localhost" =>
            {
                (Some(host.to_owned()), rest)
            }
            _ => (None, name),
        };
        if repository.is_empty() || repository.split('/').any(str::is_empty) {
            return Err(fail("the repository name is empty"));
        }
        Ok(Self {
            registry,
            repository: repository.to_owned(),
            target,
        })
    }

    /// The AWS account of an ECR registry host (`{account}.dkr.ecr.{region}.amazonaws.com`);
    /// `None` for no host or another registry.
    #[must_use]
    pub fn ecr_account(&self) -> Option<&str> {
        let host = self.registry.as_deref()?;
        let (account, rest) = host.split_once('.')?;
        let is_account = account.len() == 12 && account.chars().all(|c| c.is_ascii_digit());
        (is_account && rest.starts_with("dkr.ecr.")).then_some(account)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(registry) = &self.registry {
            write!(f, "{registry}/")?;
        }
        match &self.target {
            ImageTarget::Tag(tag) => write!(f, "{}:{tag}", self.repository),
            ImageTarget::Digest(digest) => write!(f, "{}@{digest}", self.repository),
        }
    }
}

/// The EventBridge event ECR sends when an image is pushed or deleted (detail-type
/// [`IMAGE_ACTION`], source [`ECR_SOURCE`]). Fields AWS may add later are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EcrImageAction {
    /// Event id, unique per event (a retried delivery keeps it).
    pub id: String,
    /// Always [`IMAGE_ACTION`].
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    /// Always [`ECR_SOURCE`].
    pub source: String,
    /// The account of the registry.
    pub account: String,
    /// When the action happened.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// The registry's region.
    pub region: String,
    /// What was done.
    pub detail: ImageActionDetail,
}

/// The `detail` of an [`EcrImageAction`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ImageActionDetail {
    /// Whether the action succeeded.
    pub result: ActionResult,
    /// The repository acted on.
    pub repository_name: String,
    /// The image's digest (absent on some failures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    /// Push or delete.
    pub action_type: ActionType,
    /// The tag pushed or deleted; absent for an untagged image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_tag: Option<String>,
    /// The manifest's media type, e.g. `application/vnd.oci.image.manifest.v1+json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_media_type: Option<String>,
}

/// `detail.result` of an ECR image action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ActionResult {
    /// `SUCCESS`
    Success,
    /// `FAILURE`
    Failure,
    /// Anything AWS adds later.
    #[serde(other)]
    Other,
}

/// `detail.action-type` of an ECR image action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ActionType {
    /// `PUSH`: an image or tag was pushed.
    Push,
    /// `DELETE`: an image or tag was deleted.
    Delete,
    /// Anything AWS adds later.
    #[serde(other)]
    Other,
}

/// Why an event is not an ECR image action.
#[derive(Debug, thiserror::Error)]
pub enum EcrEventError {
    /// Another kind of event reached the handler (its rule is too wide).
    #[error("not an ECR image action: source `{source_name}`, detail-type `{detail_type}`")]
    OtherEvent {
        /// The event's `source`.
        source_name: String,
        /// The event's `detail-type`.
        detail_type: String,
    },
    /// The event has the right type but not the expected shape.
    #[error("malformed ECR image action: {0}")]
    Malformed(#[from] serde_json::Error),
}

impl EcrImageAction {
    /// Reads an EventBridge event (as a Lambda function receives it) as an image action.
    ///
    /// # Errors
    /// [`EcrEventError::OtherEvent`] for an event of another source or detail-type,
    /// [`EcrEventError::Malformed`] when fields are missing or of the wrong type.
    pub fn from_event(event: Value) -> Result<Self, EcrEventError> {
        let text = |key: &str| event.get(key).and_then(Value::as_str).unwrap_or_default();
        if text("source") != ECR_SOURCE || text("detail-type") != IMAGE_ACTION {
            return Err(EcrEventError::OtherEvent {
                source_name: text("source").to_owned(),
                detail_type: text("detail-type").to_owned(),
            });
        }
        Ok(serde_json::from_value(event)?)
    }
}

/// A tag successfully pushed to ECR, and the digest it now points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImagePush {
    /// Repository name, e.g. `plinth-financial`.
    pub repository: String,
    /// The tag pushed, e.g. `1.2.0`.
    pub tag: String,
    /// `sha256:…`
    pub digest: String,
}

impl ImagePush {
    /// Whether a manifest's `backend.image` names this push: same repository and tag. The
    /// registry host, if any, is not compared: events only come from the platform's own
    /// account and region.
    #[must_use]
    pub fn matches(&self, image: &str) -> bool {
        ImageRef::parse(image).is_ok_and(|image| {
            image.repository == self.repository
                && image.target == ImageTarget::Tag(self.tag.clone())
        })
    }
}

/// The push an event reports: only a successful `PUSH` of a tagged image counts; deletes,
/// failures and untagged pushes give `None`.
#[must_use]
pub fn image_pushed(event: &EcrImageAction) -> Option<ImagePush> {
    let detail = &event.detail;
    if detail.result != ActionResult::Success || detail.action_type != ActionType::Push {
        return None;
    }
    Some(ImagePush {
        repository: detail.repository_name.clone(),
        tag: detail.image_tag.clone()?,
        digest: detail.image_digest.clone()?,
    })
}

/// The annotation of an image's OCI manifest (or index) that carries the module's Plinth
/// manifest, base64 of its JSON.
pub const MANIFEST_ANNOTATION: &str = "dev.plinth.manifest";

/// The manifest media types read back: OCI and Docker v2, single images and indexes.
pub const ACCEPTED_MEDIA_TYPES: [&str; 4] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// The [`MANIFEST_ANNOTATION`] of an image manifest or index document, as written (base64);
/// `None` when the document has none or is not JSON.
#[must_use]
pub fn carried_manifest(image_manifest: &str) -> Option<String> {
    let document: Value = serde_json::from_str(image_manifest).ok()?;
    document
        .pointer("/annotations")?
        .get(MANIFEST_ANNOTATION)?
        .as_str()
        .map(str::to_owned)
}

/// Reads what a pushed image carries.
#[async_trait]
pub trait PushedImages: Send + Sync + fmt::Debug {
    /// The [`MANIFEST_ANNOTATION`] of the image `push` names (by its digest, not its tag,
    /// which may have moved on), as written; `None` when it carries none or is gone.
    ///
    /// # Errors
    /// A [`DeployError`] naming the image when the registry cannot be read.
    async fn carried_manifest(&self, push: &ImagePush) -> Result<Option<String>, DeployError>;
}

/// The image manifests an image index lists, attestations (buildx's provenance) left out.
#[must_use]
pub fn index_children(image_index: &str) -> Vec<String> {
    let Ok(document) = serde_json::from_str::<Value>(image_index) else {
        return Vec::new();
    };
    let manifests = document.get("manifests").and_then(Value::as_array);
    manifests
        .into_iter()
        .flatten()
        .filter(|child| {
            child.pointer("/annotations/vnd.docker.reference.type")
                != Some(&Value::from("attestation-manifest"))
        })
        .filter_map(|child| child.get("digest")?.as_str().map(str::to_owned))
        .collect()
}

#[cfg(feature = "aws")]
#[async_trait]
impl PushedImages for EcrImages {
    /// The annotation of the pushed manifest; for an image index without it (buildx pushes
    /// one when it adds provenance), that of the first image it lists that has it.
    async fn carried_manifest(&self, push: &ImagePush) -> Result<Option<String>, DeployError> {
        let Some(pushed) = self.image_manifest(&push.repository, &push.digest).await? else {
            return Ok(None);
        };
        if let Some(carried) = carried_manifest(&pushed) {
            return Ok(Some(carried));
        }
        for child in index_children(&pushed) {
            let found = self.image_manifest(&push.repository, &child).await?;
            if let Some(carried) = found.as_deref().and_then(carried_manifest) {
                return Ok(Some(carried));
            }
        }
        Ok(None)
    }
}

#[cfg(feature = "aws")]
impl EcrImages {
    /// The manifest (or index) document of `repository@digest`; `None` when it is gone.
    async fn image_manifest(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<Option<String>, DeployError> {
        let image = format!("{repository}@{digest}");
        let mut request = self
            .client
            .batch_get_image()
            .repository_name(repository)
            .image_ids(
                aws_sdk_ecr::types::ImageIdentifier::builder()
                    .image_digest(digest)
                    .build(),
            );
        for media_type in ACCEPTED_MEDIA_TYPES {
            request = request.accepted_media_types(media_type);
        }
        let answer = request
            .send()
            .await
            .map_err(|e| aws_error(format!("reading image `{image}` from ECR"), &e))?;
        let Some(found) = answer.images().first() else {
            // Deleted since the push: there is nothing left to read.
            tracing::warn!(%image, failures = ?answer.failures(), "the pushed image is gone");
            return Ok(None);
        };
        Ok(found.image_manifest().map(str::to_owned))
    }
}

#[cfg(feature = "aws")]
/// Resolves manifest image references to digests in the account's ECR.
#[derive(Debug, Clone)]
pub struct EcrImages {
    client: aws_sdk_ecr::Client,
}

#[cfg(feature = "aws")]
/// An image pinned by digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedImage {
    /// `{registry}/{repository}@sha256:…`, what ECS and Lambda pull.
    pub uri: String,
    /// `sha256:…`
    pub digest: String,
}

#[cfg(feature = "aws")]
impl EcrImages {
    /// ECR on the SDK configuration given.
    #[must_use]
    pub fn new(sdk: &SdkConfig) -> Self {
        Self {
            client: aws_sdk_ecr::Client::new(sdk),
        }
    }

    /// Pins `image` (`repository:tag`, `repository@sha256:…`, optionally behind the registry
    /// host): the digest is the reference's own, else `known_digest` (recorded when the image
    /// was pushed), else what the tag points at now. A reference without a host gets the
    /// account's registry URI.
    ///
    /// # Errors
    /// A [`DeployError`] naming the image when it is not a reference, its repository or tag
    /// is not in ECR, or ECR cannot be reached.
    pub async fn pin(
        &self,
        image: &str,
        known_digest: Option<&str>,
    ) -> Result<PinnedImage, DeployError> {
        let reference = ImageRef::parse(image).map_err(|e| DeployError(e.to_string()))?;
        let digest = match (&reference.target, known_digest) {
            (ImageTarget::Digest(digest), _) => digest.clone(),
            (ImageTarget::Tag(_), Some(digest)) => digest.to_owned(),
            (ImageTarget::Tag(tag), None) => self.digest_of(&reference, tag).await?,
        };
        let repository = match &reference.registry {
            Some(host) => format!("{host}/{}", reference.repository),
            None => self.repository_uri(&reference).await?,
        };
        Ok(PinnedImage {
            uri: format!("{repository}@{digest}"),
            digest,
        })
    }

    async fn digest_of(&self, image: &ImageRef, tag: &str) -> Result<String, DeployError> {
        if image.registry.is_some() && image.ecr_account().is_none() {
            return Err(DeployError(format!(
                "image `{image}` is not in ECR: pin it by digest (`repository@sha256:…`)"
            )));
        }
        let described = self
            .client
            .describe_images()
            .repository_name(&image.repository)
            .set_registry_id(image.ecr_account().map(String::from))
            .image_ids(
                aws_sdk_ecr::types::ImageIdentifier::builder()
                    .image_tag(tag)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| not_found(image, Some(tag), &e))?;
        described
            .image_details()
            .iter()
            .find_map(|detail| detail.image_digest())
            .map(String::from)
            .ok_or_else(|| {
                DeployError(format!(
                    "image `{image}` is not in ECR: repository `{}` has no tag `{tag}`",
                    image.repository
                ))
            })
    }

    async fn repository_uri(&self, image: &ImageRef) -> Result<String, DeployError> {
        let described = self
            .client
            .describe_repositories()
            .repository_names(&image.repository)
            .send()
            .await
            .map_err(|e| not_found(image, None, &e))?;
        described
            .repositories()
            .iter()
            .find_map(|repository| repository.repository_uri())
            .map(String::from)
            .ok_or_else(|| {
                DeployError(format!(
                    "image `{image}` is not in ECR: there is no repository `{}`",
                    image.repository
                ))
            })
    }
}

/// ECR's "not found" answers as errors that name the image.
#[cfg(feature = "aws")]
fn not_found<E, R>(image: &ImageRef, tag: Option<&str>, error: &SdkError<E, R>) -> DeployError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let repository = &image.repository;
    match (error.code(), tag) {
        (Some("RepositoryNotFoundException"), _) => DeployError(format!(
            "image `{image}` is not in ECR: there is no repository `{repository}`"
        )),
        (Some("ImageNotFoundException"), Some(tag)) => DeployError(format!(
            "image `{image}` is not in ECR: repository `{repository}` has no tag `{tag}`; push it first"
        )),
        _ => aws_error(format!("looking up image `{image}` in ECR"), error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DIGEST: &str = "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd12345678";

    #[test]
    fn references_name_repository_and_tag_or_digest() {
        let image = ImageRef::parse("plinth-financial:1.2.0").unwrap();
        assert_eq!(image.registry, None);
        assert_eq!(image.repository, "plinth-financial");
        assert_eq!(image.target, ImageTarget::Tag("1.2.0".into()));
        assert_eq!(image.ecr_account(), None);

        let host = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
        let image = ImageRef::parse(&format!("{host}/team/financial@{DIGEST}")).unwrap();
        assert_eq!(image.registry.as_deref(), Some(host));
        assert_eq!(image.repository, "team/financial");
        assert_eq!(image.target, ImageTarget::Digest(DIGEST.into()));
        assert_eq!(image.ecr_account(), Some("123456789012"));
        assert_eq!(image.to_string(), format!("{host}/team/financial@{DIGEST}"));

        let image = ImageRef::parse("localhost:5000/financial:dev").unwrap();
        assert_eq!(image.registry.as_deref(), Some("localhost:5000"));
        assert_eq!(image.ecr_account(), None);
        assert_eq!(image.to_string(), "localhost:5000/financial:dev");
    }

    #[test]
    fn references_without_tag_or_with_a_bad_digest_are_refused() {
        for bad in [
            "financial",
            "localhost:5000/financial",
            "financial:",
            ":1.0",
            "a@sha256:xyz",
        ] {
            let error = ImageRef::parse(bad).unwrap_err();
            assert!(
                error.to_string().starts_with(&format!("`{bad}`")),
                "{error}"
            );
        }
    }

    #[test]
    fn the_plinth_manifest_is_read_from_an_oci_annotation() {
        let oci = json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "annotations": {MANIFEST_ANNOTATION: "eyJuYW1lIjoieCJ9", "org.opencontainers.image.created": "2026-12-01T10:00:00Z"}
        });
        assert_eq!(
            carried_manifest(&oci.to_string()).as_deref(),
            Some("eyJuYW1lIjoieCJ9")
        );
        let plain = json!({"schemaVersion": 2, "layers": []});
        assert_eq!(carried_manifest(&plain.to_string()), None);
        assert_eq!(carried_manifest("not json"), None);
    }

    #[test]
    fn an_index_lists_its_images_without_attestations() {
        let index = json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": DIGEST,
                 "platform": {"architecture": "arm64", "os": "linux"}},
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:aa",
                 "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                                 "vnd.docker.reference.digest": DIGEST},
                 "platform": {"architecture": "unknown", "os": "unknown"}}
            ]
        });
        assert_eq!(index_children(&index.to_string()), vec![DIGEST.to_owned()]);
        assert!(index_children(r#"{"layers": []}"#).is_empty());
    }

    #[test]
    fn a_push_matches_images_by_repository_and_tag() {
        let push = ImagePush {
            repository: "plinth-financial".into(),
            tag: "1.2.0".into(),
            digest: DIGEST.into(),
        };
        assert!(push.matches("plinth-financial:1.2.0"));
        assert!(
            push.matches("123456789012.dkr.ecr.us-east-1.amazonaws.com/plinth-financial:1.2.0")
        );
        assert!(!push.matches("plinth-financial:1.2.1"));
        assert!(!push.matches("plinth-reporting:1.2.0"));
        assert!(!push.matches(&format!("plinth-financial@{DIGEST}")));
    }
}
