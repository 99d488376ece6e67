//! A deployer that also routes the gateway to what it deployed: on AWS, API Gateway routes
//! ([`super::apigateway::ApiGatewayRoutes`]) around the ECS / Lambda / external deployer.
//! Composed with the deployer rather than a saga step of its own, so every saga that deploys
//! or undeploys (install, upgrade, rollback, restore, uninstall, and their undos) routes too.

use std::sync::Arc;

use async_trait::async_trait;
use plinth_module_sdk::Manifest;

use super::{DeployError, DeploySpec, Deployer, Deployment};

/// Where a module's `api_prefix` is routed to its deployment.
#[async_trait]
pub trait ModuleRoutes: Send + Sync + std::fmt::Debug {
    /// Routes the module's prefix to `deployment`. Idempotent: publishing again updates what
    /// exists and never duplicates it.
    async fn publish(
        &self,
        manifest: &Manifest,
        deployment: &Deployment,
    ) -> Result<(), DeployError>;

    /// Removes the module's routes; routes already gone are fine.
    async fn remove(&self, manifest: &Manifest, deployment: &Deployment)
    -> Result<(), DeployError>;

    /// Routes the tenants that a version installed alongside serves (pinned, or by the
    /// default) to its deployment. By default nothing: the module's routes reach its first
    /// installation only, and pins take effect on one machine only.
    async fn publish_alongside(
        &self,
        manifest: &Manifest,
        deployment: &Deployment,
    ) -> Result<(), DeployError> {
        let _ = (manifest, deployment);
        Ok(())
    }

    /// Removes what [`Self::publish_alongside`] made; already gone is fine.
    async fn remove_alongside(
        &self,
        manifest: &Manifest,
        deployment: &Deployment,
    ) -> Result<(), DeployError> {
        let _ = (manifest, deployment);
        Ok(())
    }
}

/// Deploys, then publishes the routes; removes the routes, then undeploys (so no route points
/// at a backend that is gone).
///
/// A publish that fails fails the deploy and leaves the backend running: a retry deploys again
/// (which changes nothing) and publishes again.
#[derive(Debug)]
pub struct RoutedDeployer {
    pub inner: Arc<dyn Deployer>,
    pub routes: Arc<dyn ModuleRoutes>,
}

#[async_trait]
impl Deployer for RoutedDeployer {
    /// A version alongside keeps the module's routes (its first installation's) and gets the
    /// routing by version of its own, where the routes have one ([`ModuleRoutes::publish_alongside`]:
    /// operations.md, "Versions and pins").
    async fn deploy(&self, spec: &DeploySpec) -> Result<Deployment, DeployError> {
        let deployment = self.inner.deploy(spec).await?;
        let published = if spec.alongside {
            self.routes
                .publish_alongside(&spec.manifest, &deployment)
                .await
        } else {
            self.routes.publish(&spec.manifest, &deployment).await
        };
        published.map_err(|e| {
            DeployError(format!(
                "{} is deployed but not routed: {e}",
                spec.manifest.name
            ))
        })?;
        Ok(deployment)
    }

    async fn undeploy(
        &self,
        manifest: &Manifest,
        deployment: &Deployment,
    ) -> Result<(), DeployError> {
        self.routes.remove(manifest, deployment).await?;
        self.inner.undeploy(manifest, deployment).await
    }

    async fn undeploy_alongside(
        &self,
        manifest: &Manifest,
        deployment: &Deployment,
    ) -> Result<(), DeployError> {
        self.routes.remove_alongside(manifest, deployment).await?;
        self.inner.undeploy_alongside(manifest, deployment).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::*;

    /// Records every call, in order, of the deployer and the routes it is given.
    #[derive(Debug, Default)]
    struct Log {
        calls: Mutex<Vec<String>>,
        fail: Option<&'static str>,
    }

    impl Log {
        fn call(&self, what: &str) -> Result<(), DeployError> {
            self.calls.lock().unwrap().push(what.to_owned());
            if self.fail == Some(what) {
                return Err(DeployError(format!("{what} refused")));
            }
            Ok(())
        }

        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }
    }

    #[derive(Debug)]
    struct Fake(Arc<Log>);

    #[async_trait]
    impl Deployer for Fake {
        async fn deploy(&self, _spec: &DeploySpec) -> Result<Deployment, DeployError> {
            self.0.call("deploy")?;
            Ok(Deployment {
                endpoint: "lambda:arn:aws:lambda:us-east-1:000000000000:function:plinth-billing"
                    .into(),
                health_url: String::new(),
                handle: serde_json::Value::Null,
                addresses: Vec::new(),
            })
        }

        async fn undeploy(&self, _: &Manifest, _: &Deployment) -> Result<(), DeployError> {
            self.0.call("undeploy")
        }
    }

    #[async_trait]
    impl ModuleRoutes for Fake {
        async fn publish(&self, _: &Manifest, _: &Deployment) -> Result<(), DeployError> {
            self.0.call("publish")
        }

        async fn remove(&self, _: &Manifest, _: &Deployment) -> Result<(), DeployError> {
            self.0.call("remove")
        }
    }

    /// Routes that route by version (on AWS: the module listener).
    #[derive(Debug)]
    struct ByVersion(Arc<Log>);

    #[async_trait]
    impl ModuleRoutes for ByVersion {
        async fn publish(&self, _: &Manifest, _: &Deployment) -> Result<(), DeployError> {
            self.0.call("publish")
        }

        async fn remove(&self, _: &Manifest, _: &Deployment) -> Result<(), DeployError> {
            self.0.call("remove")
        }

        async fn publish_alongside(&self, _: &Manifest, _: &Deployment) -> Result<(), DeployError> {
            self.0.call("publish_alongside")
        }

        async fn remove_alongside(&self, _: &Manifest, _: &Deployment) -> Result<(), DeployError> {
            self.0.call("remove_alongside")
        }
    }

    fn routed(fail: Option<&'static str>) -> (RoutedDeployer, Arc<Log>) {
        let log = Arc::new(Log {
            fail,
            ..Log::default()
        });
        let deployer = RoutedDeployer {
            inner: Arc::new(Fake(log.clone())),
            routes: Arc::new(Fake(log.clone())),
        };
        (deployer, log)
    }

    fn spec() -> DeploySpec {
        let manifest = Manifest::from_json_str(
            &serde_json::json!({
                "name": "billing",
                "display_name": "Billing",
                "version": "1.0.0",
                "backend": {"type": "lambda", "api_prefix": "/api/v1/billing", "image": "billing:1.0.0"}
            })
            .to_string(),
        )
        .unwrap();
        DeploySpec {
            manifest,
            image_digest: None,
            endpoint: None,
            dev_dir: None,
            env: BTreeMap::new(),
            role_arn: None,
            alongside: false,
        }
    }

    #[tokio::test]
    async fn routes_are_published_after_the_deploy_and_removed_before_the_undeploy() {
        let (deployer, log) = routed(None);
        let spec = spec();
        let deployment = deployer.deploy(&spec).await.unwrap();
        deployer
            .undeploy(&spec.manifest, &deployment)
            .await
            .unwrap();
        assert_eq!(log.calls(), ["deploy", "publish", "remove", "undeploy"]);
    }

    #[tokio::test]
    async fn a_failed_publish_fails_the_deploy_and_says_the_backend_runs() {
        let (deployer, log) = routed(Some("publish"));
        let error = deployer.deploy(&spec()).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "billing is deployed but not routed: publish refused"
        );
        assert_eq!(log.calls(), ["deploy", "publish"]);
    }

    #[tokio::test]
    async fn routes_that_cannot_be_removed_keep_the_backend_running() {
        let (deployer, log) = routed(Some("remove"));
        let spec = spec();
        let deployment = Deployment {
            endpoint: "https://billing.example.com".into(),
            health_url: String::new(),
            handle: serde_json::Value::Null,
            addresses: Vec::new(),
        };
        let error = deployer
            .undeploy(&spec.manifest, &deployment)
            .await
            .unwrap_err();
        assert_eq!(error.to_string(), "remove refused");
        assert_eq!(log.calls(), ["remove"]);
    }

    /// Versions side by side: a version alongside is deployed and undeployed without touching
    /// the module's routes, which stay its first installation's.
    #[tokio::test]
    async fn a_version_alongside_leaves_the_module_s_routes_as_they_are() {
        let (deployer, log) = routed(None);
        let mut spec = spec();
        spec.alongside = true;
        let deployment = deployer.deploy(&spec).await.unwrap();
        deployer
            .undeploy_alongside(&spec.manifest, &deployment)
            .await
            .unwrap();
        assert_eq!(log.calls(), ["deploy", "undeploy"]);
    }

    /// Issue 23 on AWS: a version alongside gets its own route by version after its deploy,
    /// which goes before its undeploy, and never the module's routes.
    #[tokio::test]
    async fn a_version_alongside_is_routed_by_version_after_its_deploy_and_unrouted_before_its_undeploy()
     {
        let log = Arc::new(Log::default());
        let deployer = RoutedDeployer {
            inner: Arc::new(Fake(log.clone())),
            routes: Arc::new(ByVersion(log.clone())),
        };
        let mut spec = spec();
        spec.alongside = true;
        let deployment = deployer.deploy(&spec).await.unwrap();
        deployer
            .undeploy_alongside(&spec.manifest, &deployment)
            .await
            .unwrap();
        assert_eq!(
            log.calls(),
            [
                "deploy",
                "publish_alongside",
                "remove_alongside",
                "undeploy"
            ]
        );
    }
}
