//! The API Gateway adapter of [`ModuleRoutes`]: a module's routes on the platform's HTTP API.
//!
//! For a module whose `api_prefix` is `/api/v1/m`, [`ApiGatewayRoutes::publish`] keeps on the
//! API (`PLINTH_HTTP_API_ID`):
//!
//! - one integration, described `plinth:module=m` (integrations have no tags; the description
//!   is how a later run finds it): `AWS_PROXY` to the function with payload 2.0 for a Lambda
//!   deployment; `HTTP_PROXY` to an external endpoint over the internet; `HTTP_PROXY` through
//!   the VPC link `PLINTH_VPC_LINK_ID` to the Cloud Map service of an ECS deployment;
//! - the routes `ANY /api/v1/m` and `ANY /api/v1/m/{proxy+}` to it, authorized by the
//!   platform's Lambda authorizer (`PLINTH_AUTHORIZER_ID`);
//! - for a Lambda deployment, the function's permission for API Gateway to invoke it from
//!   those routes.
//!
//! Every integration maps the authorizer's signed tenant context (`$context.authorizer.context`)
//! onto `X-Plinth-Context` and API Gateway's address of the caller
//! (`$context.identity.sourceIp`) onto `X-Real-IP`, replacing whatever a client sent there,
//! and removes what only the gateway may send a module as the `plinth` gateway does
//! ([`header_parameters`]): the module key, the method overrides, the client-claimed address
//! fields, the other `X-Plinth-*` headers the platform sets, each in every spelling with `_`
//! for `-`, and the underscore spellings of the framing and hop-by-hop fields. API Gateway
//! cannot remove headers by prefix, nor touch its reserved headers (`Authorization`,
//! `X-Forwarded-For`, `Forwarded`…: [`is_reserved`]); docs/aws.md says what that leaves.
//! Publishing is idempotent: what exists is found and updated, duplicates left by an
//! interrupted run are deleted.

mod plan;

use std::collections::HashMap;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_apigatewayv2::Client;
use aws_sdk_apigatewayv2::error::ProvideErrorMetadata;
use aws_sdk_apigatewayv2::types::{AuthorizationType, Integration, IntegrationType, Route};
use plinth_module_sdk::Manifest;

use super::alb::{AUTHORIZER_VERSION, VERSION_PARAMETER, VersionListener};
use super::ecs::aws_error;
use super::routed::ModuleRoutes;
use super::{DeployError, Deployment};
use plan::{IntegrationSpec, Target, invoke_permissions, marker, route_keys};

pub use plan::{
    AUTHORIZER_CONTEXT, CLIENT_ADDRESS_HEADER, GATEWAY_ONLY, REMOVED_HEADERS, SOURCE_IP,
    header_parameters, is_reserved,
};

/// Which API and authorizer module routes go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiGatewaySettings {
    /// The platform's HTTP API (`PLINTH_HTTP_API_ID`).
    pub api_id: String,
    /// Its Lambda authorizer (`PLINTH_AUTHORIZER_ID`).
    pub authorizer_id: String,
    /// The VPC link to ECS services (`PLINTH_VPC_LINK_ID`); without it ECS modules cannot be
    /// routed.
    pub vpc_link_id: Option<String>,
}

impl ApiGatewaySettings {
    /// Reads `PLINTH_HTTP_API_ID`, `PLINTH_AUTHORIZER_ID` and `PLINTH_VPC_LINK_ID`. `None`
    /// when neither of the first two is set (no routes are published).
    ///
    /// # Errors
    /// When only one of the two is set.
    pub fn from_env() -> Result<Option<Self>, DeployError> {
        let optional = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        match (
            optional("PLINTH_HTTP_API_ID"),
            optional("PLINTH_AUTHORIZER_ID"),
        ) {
            (None, None) => Ok(None),
            (Some(api_id), Some(authorizer_id)) => Ok(Some(Self {
                api_id,
                authorizer_id,
                vpc_link_id: optional("PLINTH_VPC_LINK_ID"),
            })),
            (Some(_), None) => Err(DeployError(
                "PLINTH_AUTHORIZER_ID is not set: the authorizer of module routes on PLINTH_HTTP_API_ID".into(),
            )),
            (None, Some(_)) => Err(DeployError(
                "PLINTH_HTTP_API_ID is not set: the HTTP API that PLINTH_AUTHORIZER_ID belongs to".into(),
            )),
        }
    }
}

/// Publishes modules' routes on the platform's HTTP API.
#[derive(Debug, Clone)]
pub struct ApiGatewayRoutes {
    api: Client,
    lambda: aws_sdk_lambda::Client,
    settings: ApiGatewaySettings,
    /// The module listener, when versions are routed per tenant (`super::alb`).
    versions: Option<VersionListener>,
}

fn is_not_found<E: ProvideErrorMetadata>(error: &E) -> bool {
    matches!(
        error.code(),
        Some("NotFoundException" | "ResourceNotFoundException")
    )
}

impl ApiGatewayRoutes {
    /// Routes on the SDK configuration given.
    #[must_use]
    pub fn new(sdk: &SdkConfig, settings: ApiGatewaySettings) -> Self {
        Self {
            api: Client::new(sdk),
            lambda: aws_sdk_lambda::Client::new(sdk),
            settings,
            versions: None,
        }
    }

    /// Routes Lambda and ECS modules through the module listener, each installed version by
    /// its own rule, on the header the integration sets from the authorizer's `version`.
    #[must_use]
    pub fn with_versions(mut self, listener: VersionListener) -> Self {
        self.versions = Some(listener);
        self
    }

    /// The listener, when the deployment goes through it (an external endpoint does not).
    fn listener_for(&self, deployment: &Deployment) -> Option<&VersionListener> {
        self.versions
            .as_ref()
            .filter(|_| VersionListener::routes(deployment))
    }

    async fn routes(&self) -> Result<Vec<Route>, DeployError> {
        all_pages(|next| async move {
            let page = self
                .api
                .get_routes()
                .api_id(&self.settings.api_id)
                .set_next_token(next)
                .send()
                .await
                .map_err(|e| {
                    aws_error(
                        format!("listing the routes of API `{}`", self.settings.api_id),
                        &e,
                    )
                })?;
            Ok((page.items().to_vec(), page.next_token().map(str::to_owned)))
        })
        .await
    }

    async fn integrations(&self) -> Result<Vec<Integration>, DeployError> {
        all_pages(|next| async move {
            let page = self
                .api
                .get_integrations()
                .api_id(&self.settings.api_id)
                .set_next_token(next)
                .send()
                .await
                .map_err(|e| {
                    aws_error(
                        format!("listing the integrations of API `{}`", self.settings.api_id),
                        &e,
                    )
                })?;
            Ok((page.items().to_vec(), page.next_token().map(str::to_owned)))
        })
        .await
    }

    /// Creates the integration, or updates the module's existing one; gives back its id.
    async fn put_integration(
        &self,
        spec: &IntegrationSpec,
        existing: Option<&Integration>,
    ) -> Result<String, DeployError> {
        let api = &self.settings.api_id;
        let Some(existing) = existing else {
            let created = self
                .api
                .create_integration()
                .api_id(api)
                .description(&spec.description)
                .integration_type(spec.kind.clone())
                .integration_uri(&spec.uri)
                .connection_type(spec.connection.clone())
                .set_connection_id(spec.connection_id.clone())
                .set_integration_method(
                    (spec.kind == IntegrationType::HttpProxy).then(|| "ANY".to_owned()),
                )
                .payload_format_version(spec.payload_format_version)
                .set_request_parameters(Some(spec.request_parameters.clone().into_iter().collect()))
                .send()
                .await
                .map_err(|e| {
                    aws_error(
                        format!("creating the integration `{}`", spec.description),
                        &e,
                    )
                })?;
            return created.integration_id().map(String::from).ok_or_else(|| {
                DeployError(format!(
                    "API Gateway created `{}` without an id",
                    spec.description
                ))
            });
        };
        let id = existing.integration_id().unwrap_or_default().to_owned();
        if spec.matches(existing) {
            return Ok(id);
        }
        // A mapping is removed from an integration by sending its key with an empty value.
        let mut parameters: HashMap<String, String> = existing
            .request_parameters()
            .map(|p| p.keys().map(|k| (k.clone(), String::new())).collect())
            .unwrap_or_default();
        parameters.extend(spec.request_parameters.clone());
        self.api
            .update_integration()
            .api_id(api)
            .integration_id(&id)
            .integration_uri(&spec.uri)
            .set_connection_id(spec.connection_id.clone())
            .payload_format_version(spec.payload_format_version)
            .set_request_parameters(Some(parameters))
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    format!("updating the integration `{}` ({id})", spec.description),
                    &e,
                )
            })?;
        Ok(id)
    }

    /// Makes the routes with `keys` target `integration_id` with the platform's authorizer:
    /// one route per key, created or updated; duplicates are deleted.
    async fn put_routes(
        &self,
        keys: &[String],
        routes: &[Route],
        integration_id: &str,
    ) -> Result<(), DeployError> {
        let api = &self.settings.api_id;
        let target = format!("integrations/{integration_id}");
        for key in keys {
            let mut same_key = routes
                .iter()
                .filter(|r| r.route_key() == Some(key.as_str()));
            match same_key.next() {
                None => {
                    self.api
                        .create_route()
                        .api_id(api)
                        .route_key(key)
                        .target(&target)
                        .authorization_type(AuthorizationType::Custom)
                        .authorizer_id(&self.settings.authorizer_id)
                        .send()
                        .await
                        .map_err(|e| aws_error(format!("creating the route `{key}`"), &e))?;
                }
                Some(route) => {
                    let current = route.target() == Some(target.as_str())
                        && route.authorization_type() == Some(&AuthorizationType::Custom)
                        && route.authorizer_id() == Some(self.settings.authorizer_id.as_str());
                    if !current {
                        self.api
                            .update_route()
                            .api_id(api)
                            .route_id(route.route_id().unwrap_or_default())
                            .target(&target)
                            .authorization_type(AuthorizationType::Custom)
                            .authorizer_id(&self.settings.authorizer_id)
                            .send()
                            .await
                            .map_err(|e| aws_error(format!("updating the route `{key}`"), &e))?;
                    }
                }
            }
            for duplicate in same_key {
                self.delete_route(duplicate).await?;
            }
        }
        Ok(())
    }

    async fn delete_route(&self, route: &Route) -> Result<(), DeployError> {
        let key = route.route_key().unwrap_or_default();
        match self
            .api
            .delete_route()
            .api_id(&self.settings.api_id)
            .route_id(route.route_id().unwrap_or_default())
            .send()
            .await
        {
            Err(e) if !e.as_service_error().is_some_and(is_not_found) => {
                Err(aws_error(format!("deleting the route `{key}`"), &e))
            }
            _ => Ok(()),
        }
    }

    /// Deletes an integration of the module. One that a route outside the module still uses
    /// is left, with a warning: removing the module must not break another route.
    async fn delete_integration(&self, integration: &Integration) -> Result<(), DeployError> {
        let id = integration.integration_id().unwrap_or_default();
        match self
            .api
            .delete_integration()
            .api_id(&self.settings.api_id)
            .integration_id(id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(is_not_found) => Ok(()),
            Err(e)
                if e.as_service_error().and_then(ProvideErrorMetadata::code)
                    == Some("ConflictException") =>
            {
                tracing::warn!(integration = %id, error = %aws_error("deleting", &e), "integration still in use; left in place");
                Ok(())
            }
            Err(e) => Err(aws_error(format!("deleting the integration {id}"), &e)),
        }
    }
}

impl ApiGatewayRoutes {
    /// Statement ids of the function's resource policy.
    async fn policy_statements(&self, function_arn: &str) -> Result<Vec<String>, DeployError> {
        let policy = match self
            .lambda
            .get_policy()
            .function_name(function_arn)
            .send()
            .await
        {
            Ok(found) => found.policy().unwrap_or("{}").to_owned(),
            Err(e) if e.as_service_error().is_some_and(is_not_found) => return Ok(Vec::new()),
            Err(e) => {
                return Err(aws_error(
                    format!("reading the policy of `{function_arn}`"),
                    &e,
                ));
            }
        };
        let policy: serde_json::Value = serde_json::from_str(&policy).unwrap_or_default();
        Ok(policy["Statement"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|statement| statement["Sid"].as_str().map(String::from))
            .collect())
    }

    /// Lets API Gateway invoke the function from the module's routes (each permission once).
    async fn allow_invoke(
        &self,
        function_arn: &str,
        keys: &[String; 2],
    ) -> Result<(), DeployError> {
        let present = self.policy_statements(function_arn).await?;
        for (statement, source_arn) in
            invoke_permissions(&self.settings.api_id, function_arn, keys)?
        {
            if present.contains(&statement) {
                continue;
            }
            let added = self
                .lambda
                .add_permission()
                .function_name(function_arn)
                .statement_id(&statement)
                .action("lambda:InvokeFunction")
                .principal("apigateway.amazonaws.com")
                .source_arn(&source_arn)
                .send()
                .await;
            match added {
                Err(e)
                    if e.as_service_error().and_then(ProvideErrorMetadata::code)
                        != Some("ResourceConflictException") =>
                {
                    return Err(aws_error(
                        format!("letting API Gateway invoke `{function_arn}`"),
                        &e,
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    async fn revoke_invoke(
        &self,
        function_arn: &str,
        keys: &[String; 2],
    ) -> Result<(), DeployError> {
        for (statement, _) in invoke_permissions(&self.settings.api_id, function_arn, keys)? {
            let removed = self
                .lambda
                .remove_permission()
                .function_name(function_arn)
                .statement_id(&statement)
                .send()
                .await;
            if let Err(e) = removed
                && !e.as_service_error().is_some_and(is_not_found)
            {
                return Err(aws_error(
                    format!("removing `{statement}` from `{function_arn}`"),
                    &e,
                ));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl ModuleRoutes for ApiGatewayRoutes {
    async fn publish(
        &self,
        manifest: &Manifest,
        deployment: &Deployment,
    ) -> Result<(), DeployError> {
        let module = manifest.name.as_str();
        let keys = route_keys(manifest)?;
        let vpc_link_id = self.settings.vpc_link_id.as_deref();
        let (target, spec) = match self.listener_for(deployment) {
            Some(listener) => {
                // The version's rule first: the integration never sends this version's
                // tenants to a listener without a rule for it.
                listener.route(manifest, deployment, false).await?;
                let target = Target::listener(listener.listener_arn(), vpc_link_id)?;
                let mut spec = IntegrationSpec::new(module, &target);
                spec.request_parameters
                    .insert(VERSION_PARAMETER.into(), AUTHORIZER_VERSION.into());
                (target, spec)
            }
            None => {
                let target = Target::of(deployment, vpc_link_id)?;
                let spec = IntegrationSpec::new(module, &target);
                (target, spec)
            }
        };
        let routes = self.routes().await?;
        let integrations = self.integrations().await?;
        let ours: Vec<&Integration> = integrations
            .iter()
            .filter(|i| i.description() == Some(spec.description.as_str()))
            .collect();
        // Prefer the integration the routes use now, so a re-run changes nothing.
        let routed: Vec<&str> = routes
            .iter()
            .filter(|r| {
                r.route_key()
                    .is_some_and(|k| keys.iter().any(|key| key == k))
            })
            .filter_map(|r| r.target()?.strip_prefix("integrations/"))
            .collect();
        let reusable = ours.iter().copied().filter(|i| spec.reusable(i));
        let existing = reusable
            .clone()
            .find(|i| i.integration_id().is_some_and(|id| routed.contains(&id)))
            .or_else(|| reusable.clone().next());
        let integration_id = self.put_integration(&spec, existing).await?;
        self.put_routes(&keys, &routes, &integration_id).await?;
        for stale in ours
            .iter()
            .filter(|i| i.integration_id() != Some(integration_id.as_str()))
        {
            self.delete_integration(stale).await?;
        }
        if let Target::Lambda { function_arn } = &target {
            self.allow_invoke(function_arn, &keys).await?;
        }
        tracing::info!(%module, api = %self.settings.api_id, integration = %integration_id, "module routes published");
        Ok(())
    }

    async fn remove(
        &self,
        manifest: &Manifest,
        deployment: &Deployment,
    ) -> Result<(), DeployError> {
        let keys = route_keys(manifest)?;
        let description = marker(manifest.name.as_str());
        for route in self.routes().await? {
            if route
                .route_key()
                .is_some_and(|k| keys.iter().any(|key| key == k))
            {
                self.delete_route(&route).await?;
            }
        }
        for integration in self.integrations().await? {
            if integration.description() == Some(description.as_str()) {
                self.delete_integration(&integration).await?;
            }
        }
        if let Some(function_arn) = deployment.endpoint.strip_prefix("lambda:") {
            self.revoke_invoke(function_arn, &keys).await?;
        }
        if let Some(listener) = self.listener_for(deployment) {
            listener.unroute(manifest, deployment, false).await?;
        }
        Ok(())
    }

    async fn publish_alongside(
        &self,
        manifest: &Manifest,
        deployment: &Deployment,
    ) -> Result<(), DeployError> {
        match self.listener_for(deployment) {
            Some(listener) => listener.route(manifest, deployment, true).await,
            None => {
                tracing::warn!(module = %manifest.name, version = %manifest.version, "no module listener (PLINTH_MODULE_LISTENER_ARN) for this deployment: the module's routes reach its first installation only, and pins to this version take effect on one machine only");
                Ok(())
            }
        }
    }

    async fn remove_alongside(
        &self,
        manifest: &Manifest,
        deployment: &Deployment,
    ) -> Result<(), DeployError> {
        match self.listener_for(deployment) {
            Some(listener) => listener.unroute(manifest, deployment, true).await,
            None => Ok(()),
        }
    }
}

/// Every item of a listing the SDK pages by `next_token` (these operations have no paginator).
async fn all_pages<T, F, Fut>(mut page: F) -> Result<Vec<T>, DeployError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, Option<String>), DeployError>>,
{
    let mut all = Vec::new();
    let mut next = None;
    loop {
        let (items, token) = page(next).await?;
        all.extend(items);
        match token {
            Some(token) if !token.is_empty() => next = Some(token),
            _ => return Ok(all),
        }
    }
}
