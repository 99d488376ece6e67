//! What a pushed image does to the catalog. An image that carries its Plinth manifest
//! ([`MANIFEST_ANNOTATION`]) publishes it as a new version, validated like any publish, with the
//! image's digest; one that carries none records its digest on the published versions that
//! name it. A push never changes a published version: one that would (another digest for a
//! version that has one, other content under a published number) is refused — audited,
//! [`IMAGE_REFUSED`] on the bus, logged as a warning — and nothing else is written.
//!
//! Who may publish by pushing: ECR push rights are the account's IAM, granted per repository
//! by the operator, so a push to a repository acts for the modules whose published versions
//! name an image there (as a module's own key may publish its next versions); a module's first
//! version is published by a platform admin (`plinth module publish`), as through the API.

use base64::Engine;
use plinth_module_sdk::{ModuleName, validate_manifest};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::{Catalog, ListFilter, ModuleVersion, RecordedImage, digest, immutable};
use crate::audit;
use crate::cache::Stale;
use crate::changes::Change;
use crate::deploy::ecr::{
    EcrImageAction, ImagePush, ImageRef, MANIFEST_ANNOTATION, PushedImages, image_pushed,
};
use crate::error::{Error, Result};
use crate::events::platform_event;
use crate::store::{Item, Query, Write, from_item, keys, query_all};

/// `detail-type` (and audit action) of a push that was refused.
pub const IMAGE_REFUSED: &str = "module.image.refused";

/// What a push did to the catalog.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PushOutcome {
    /// The version the manifest the image carried was published as, with the image's digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<RecordedImage>,
    /// Published versions that name the image and had no digest: now they have this one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recorded: Vec<RecordedImage>,
    /// What the push would have changed, refused: audited and reported on the bus.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<Refusal>,
}

/// A push refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub reason: String,
    /// The digest the version already runs, when the push would have replaced it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded_digest: Option<String>,
}

impl Refusal {
    fn of(module: Option<&str>, version: Option<&str>, reason: String) -> Self {
        Self {
            module: module.map(str::to_owned),
            version: version.map(str::to_owned),
            reason,
            recorded_digest: None,
        }
    }
}

/// The manifest document an annotation holds: base64 of JSON.
fn decode(carried: &str) -> std::result::Result<Value, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(carried.trim())
        .map_err(|e| format!("not base64: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("not JSON: {e}"))
}

/// Whether a published manifest's `backend.image` is in `repository`.
fn names_repository(manifest: &Value, repository: &str) -> bool {
    manifest
        .pointer("/backend/image")
        .and_then(Value::as_str)
        .and_then(|image| ImageRef::parse(image).ok())
        .is_some_and(|image| image.repository == repository)
}

impl Catalog {
    /// An ECR image action: a successful tagged push publishes the manifest the image carries
    /// (read through `images`) or records its digest; anything else changes nothing. The
    /// publisher is `ecr:{account}/{repository}`.
    ///
    /// # Errors
    /// 503 when the image or the store cannot be read (the event is delivered again).
    pub async fn image_action(
        &self,
        images: &dyn PushedImages,
        action: &EcrImageAction,
    ) -> Result<PushOutcome> {
        let Some(push) = image_pushed(action) else {
            tracing::info!(repository = %action.detail.repository_name, "not a successful tagged push: nothing to do");
            return Ok(PushOutcome::default());
        };
        let carried = images.carried_manifest(&push).await.map_err(|e| {
            Error::unavailable_because(
                format!(
                    "cannot read image {}@{} from ECR",
                    push.repository, push.digest
                ),
                e,
            )
        })?;
        let publisher = format!("ecr:{}/{}", action.account, push.repository);
        self.image_pushed(&push, &publisher, carried.as_deref())
            .await
    }

    /// What `push` does, given the manifest annotation the image `carried` (base64 JSON).
    ///
    /// # Errors
    /// 503 when the store cannot be read or written.
    pub async fn image_pushed(
        &self,
        push: &ImagePush,
        publisher: &str,
        carried: Option<&str>,
    ) -> Result<PushOutcome> {
        match carried {
            Some(carried) => self.publish_carried(push, publisher, carried).await,
            None => self.record_pushed_digest(push, publisher).await,
        }
    }

    async fn publish_carried(
        &self,
        push: &ImagePush,
        publisher: &str,
        carried: &str,
    ) -> Result<PushOutcome> {
        let image = format!("{}:{}", push.repository, push.tag);
        let document = match decode(carried) {
            Ok(document) => document,
            Err(why) => {
                let reason = format!("the {MANIFEST_ANNOTATION} annotation of {image} is {why}");
                return self
                    .refuse(push, publisher, Refusal::of(None, None, reason))
                    .await;
            }
        };
        let manifest = match validate_manifest(&document) {
            Ok(manifest) => manifest,
            Err(problems) => {
                let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
                let reason = format!(
                    "the manifest {image} carries has {} problem(s): {}",
                    problems.len(),
                    listed.join("; ")
                );
                let (name, version) = (document["name"].as_str(), document["version"].as_str());
                return self
                    .refuse(push, publisher, Refusal::of(name, version, reason))
                    .await;
            }
        };
        let (name, version) = (manifest.name.to_string(), manifest.version.to_string());
        let refusal = |reason: String| Refusal::of(Some(&name), Some(&version), reason);
        let named = manifest.backend.image.as_deref();
        if !named.is_some_and(|named| push.matches(named)) {
            let reason = format!(
                "the manifest {image} carries names backend.image `{}`, not the image it was \
                 pushed as",
                named.unwrap_or("(none)")
            );
            return self.refuse(push, publisher, refusal(reason)).await;
        }
        let Some(entry) = self.store.get(&keys::catalog_entry(&name)).await? else {
            let reason = format!(
                "{name} has no published version: a platform admin publishes its first \
                 (`plinth module publish`), pushes to its repository publish the next"
            );
            return self.refuse(push, publisher, refusal(reason)).await;
        };
        let query = Query::prefix(keys::module_partition(&name), "VERSION#");
        let mut versions = Vec::new();
        for item in query_all(self.store.as_ref(), &query).await? {
            let published: ModuleVersion = from_item(&item)?;
            versions.push((item, published));
        }
        if !versions
            .iter()
            .any(|(_, v)| names_repository(&v.manifest, &push.repository))
        {
            let reason = format!(
                "{name}'s published versions name no image in repository {}; a push there does \
                 not publish {name}",
                push.repository
            );
            return self.refuse(push, publisher, refusal(reason)).await;
        }
        match versions.into_iter().find(|(_, v)| v.version == version) {
            None => {
                self.write_version(
                    publisher,
                    &document,
                    &manifest,
                    Some(&entry),
                    Some(push),
                    None,
                )
                .await?;
                tracing::info!(module = %name, %version, digest = %push.digest, %publisher, "published from a pushed image");
                Ok(PushOutcome {
                    published: Some(RecordedImage {
                        module: name,
                        version,
                        image_digest: push.digest.clone(),
                    }),
                    ..PushOutcome::default()
                })
            }
            Some((_, existing)) if existing.digest != digest(&document) => {
                let reason = immutable(&existing);
                self.refuse(push, publisher, refusal(reason)).await
            }
            Some((item, existing)) => self.record_on(&item, existing, push, publisher).await,
        }
    }

    /// A push without a manifest: its digest is recorded on every published version whose
    /// `backend.image` names that repository and tag, so installs run exactly that image.
    async fn record_pushed_digest(&self, push: &ImagePush, publisher: &str) -> Result<PushOutcome> {
        let mut outcome = PushOutcome::default();
        for entry in self.list(&ListFilter::default()).await? {
            let Ok(module) = ModuleName::parse(&entry.name) else {
                continue;
            };
            // The query's items carry their store version: the digest is written under it,
            // with no second read.
            let query = Query::prefix(keys::module_partition(module.as_str()), "VERSION#");
            for item in query_all(self.store.as_ref(), &query).await? {
                let version: ModuleVersion = from_item(&item)?;
                let image = version
                    .manifest
                    .pointer("/backend/image")
                    .and_then(Value::as_str);
                if !image.is_some_and(|image| push.matches(image)) {
                    continue;
                }
                let done = self.record_on(&item, version, push, publisher).await?;
                outcome.recorded.extend(done.recorded);
                outcome.refused.extend(done.refused);
            }
        }
        Ok(outcome)
    }

    /// Records the pushed digest on a published version that has none; the same digest
    /// changes nothing, another one is refused.
    async fn record_on(
        &self,
        item: &Item,
        version: ModuleVersion,
        push: &ImagePush,
        publisher: &str,
    ) -> Result<PushOutcome> {
        let module = version.module.clone();
        match version.image_digest.as_deref() {
            Some(recorded) if recorded == push.digest => Ok(PushOutcome::default()),
            Some(recorded) => {
                let reason = format!(
                    "{module} {} runs image {recorded}; pushing {}:{} as {} would change a \
                     published version, and versions are immutable: push a new tag for a new \
                     version",
                    version.version, push.repository, push.tag, push.digest
                );
                let mut refusal = Refusal::of(Some(&module), Some(&version.version), reason);
                refusal.recorded_digest = Some(recorded.to_owned());
                self.refuse(push, publisher, refusal).await
            }
            None => {
                let mut data = item.data.clone();
                data.insert("image_digest".into(), Value::String(push.digest.clone()));
                let (next, condition) = item.next(data);
                let writes = vec![
                    Write::Put {
                        item: next,
                        condition,
                    },
                    audit::record(
                        audit::PLATFORM_SCOPE,
                        publisher,
                        "module.image.recorded",
                        &format!("module:{module}"),
                        json!({"version": version.version, "image_digest": push.digest,
                               "repository": push.repository, "tag": push.tag}),
                    ),
                ];
                let change = Change::new(writes).stale(Stale::Module(module.clone()));
                self.changes.commit(change).await?;
                tracing::info!(%module, version = %version.version, digest = %push.digest, "image digest recorded");
                Ok(PushOutcome {
                    recorded: vec![RecordedImage {
                        module,
                        version: version.version,
                        image_digest: push.digest.clone(),
                    }],
                    ..PushOutcome::default()
                })
            }
        }
    }

    /// Refuses a push: only its audit record is written, and [`IMAGE_REFUSED`] published.
    async fn refuse(
        &self,
        push: &ImagePush,
        publisher: &str,
        refusal: Refusal,
    ) -> Result<PushOutcome> {
        tracing::warn!(
            repository = %push.repository, tag = %push.tag, digest = %push.digest,
            module = ?refusal.module, version = ?refusal.version, reason = %refusal.reason,
            "image push refused"
        );
        let mut payload = Map::new();
        payload.insert("repository".into(), json!(push.repository));
        payload.insert("tag".into(), json!(push.tag));
        payload.insert("image_digest".into(), json!(push.digest));
        if let Value::Object(fields) = json!(refusal) {
            payload.extend(fields);
        }
        let payload = Value::Object(payload);
        let target = refusal.module.as_ref().map_or_else(
            || format!("image:{}", push.repository),
            |module| format!("module:{module}"),
        );
        let writes = vec![audit::record(
            audit::PLATFORM_SCOPE,
            publisher,
            IMAGE_REFUSED,
            &target,
            payload.clone(),
        )];
        let event = platform_event(IMAGE_REFUSED, payload);
        self.changes
            .commit(Change::new(writes).events([event]))
            .await?;
        Ok(PushOutcome {
            refused: vec![refusal],
            ..PushOutcome::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_annotation_is_base64_of_json() {
        let encoded = base64::engine::general_purpose::STANDARD.encode(br#"{"name":"hr"}"#);
        assert_eq!(
            decode(&format!("{encoded}\n")).unwrap(),
            json!({"name": "hr"})
        );
        assert!(decode("%%%").unwrap_err().starts_with("not base64"));
        let not_json = base64::engine::general_purpose::STANDARD.encode(b"name: hr");
        assert!(decode(&not_json).unwrap_err().starts_with("not JSON"));
    }
}
