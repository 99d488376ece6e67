//! Target-tracking autoscaling of a module's ECS service (Application Auto Scaling): the
//! manifest's `backend.scaling` bounds, `max_tasks` capped by the platform.
//!
//! The scalable target is the service's `ecs:service:DesiredCount` (resource
//! `service/{cluster}/{service}`); its one policy, `plinth-cpu`, tracks
//! `ECSServiceAverageCPUUtilization` at `target_cpu_percent` (default
//! [`DEFAULT_TARGET_CPU_PERCENT`]). A deploy without `scaling` removes both, so a version that
//! drops scaling leaves none behind; so does an undeploy.

use aws_config::SdkConfig;
use aws_sdk_applicationautoscaling::Client;
use aws_sdk_applicationautoscaling::types::{
    MetricType, PolicyType, PredefinedMetricSpecification, ScalableDimension, ServiceNamespace,
    TargetTrackingScalingPolicyConfiguration,
};
use plinth_module_sdk::manifest::Scaling;
use serde::{Deserialize, Serialize};

use super::DeployError;
use super::ecs::aws_error;

/// Average CPU, in percent, a service is scaled to hold when the manifest names none.
pub const DEFAULT_TARGET_CPU_PERCENT: u32 = 60;
/// Most tasks a module's service may scale to when `PLINTH_ECS_MAX_TASKS` is unset.
pub const DEFAULT_MAX_TASKS: u32 = 10;
/// The name of the target-tracking policy on each scaled service.
pub const POLICY_NAME: &str = "plinth-cpu";
/// Seconds between scale-ins (slow: a task is cheap to keep) and scale-outs.
const SCALE_IN_COOLDOWN: i32 = 300;
const SCALE_OUT_COOLDOWN: i32 = 60;

/// The bounds a service scales within, as applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedScaling {
    pub min_tasks: u32,
    pub max_tasks: u32,
    pub target_cpu_percent: u32,
    /// The manifest's `max_tasks` when the platform's cap lowered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capped_from: Option<u32>,
}

impl AppliedScaling {
    /// The manifest's bounds with `max_tasks` (and so `min_tasks`) capped at `cap`.
    #[must_use]
    pub fn new(scaling: &Scaling, cap: u32) -> Self {
        let cap = cap.max(1);
        let max_tasks = scaling.max_tasks.min(cap);
        Self {
            min_tasks: scaling.min_tasks.min(max_tasks),
            max_tasks,
            target_cpu_percent: scaling
                .target_cpu_percent
                .unwrap_or(DEFAULT_TARGET_CPU_PERCENT),
            capped_from: (scaling.max_tasks > cap).then_some(scaling.max_tasks),
        }
    }

    /// `desired` kept within the bounds.
    #[must_use]
    pub fn clamp(&self, desired: i32) -> i32 {
        desired.clamp(to_i32(self.min_tasks), to_i32(self.max_tasks))
    }
}

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Application Auto Scaling for module services.
#[derive(Debug, Clone)]
pub struct ServiceScaling {
    client: Client,
}

impl ServiceScaling {
    #[must_use]
    pub fn new(sdk: &SdkConfig) -> Self {
        Self {
            client: Client::new(sdk),
        }
    }

    /// `service/{cluster}/{service}`: the scalable target of a service (the cluster by name,
    /// even when configured by ARN).
    #[must_use]
    pub fn resource_id(cluster: &str, service: &str) -> String {
        let cluster = cluster.rsplit('/').next().unwrap_or(cluster);
        format!("service/{cluster}/{service}")
    }

    /// Registers (or updates) the scalable target and its target-tracking policy.
    ///
    /// # Errors
    /// When Application Auto Scaling refuses either; the message names the service.
    pub async fn apply(
        &self,
        cluster: &str,
        service: &str,
        scaling: &AppliedScaling,
    ) -> Result<(), DeployError> {
        let resource = Self::resource_id(cluster, service);
        self.client
            .register_scalable_target()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(&resource)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .min_capacity(to_i32(scaling.min_tasks))
            .max_capacity(to_i32(scaling.max_tasks))
            .send()
            .await
            .map_err(|e| aws_error(format!("registering `{resource}` for autoscaling"), &e))?;
        let metric = PredefinedMetricSpecification::builder()
            .predefined_metric_type(MetricType::EcsServiceAverageCpuUtilization)
            .build()
            .map_err(|e| DeployError(format!("scaling metric of `{service}`: {e}")))?;
        let tracking = TargetTrackingScalingPolicyConfiguration::builder()
            .target_value(f64::from(scaling.target_cpu_percent))
            .predefined_metric_specification(metric)
            .scale_in_cooldown(SCALE_IN_COOLDOWN)
            .scale_out_cooldown(SCALE_OUT_COOLDOWN)
            .build()
            .map_err(|e| DeployError(format!("scaling policy of `{service}`: {e}")))?;
        self.client
            .put_scaling_policy()
            .policy_name(POLICY_NAME)
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(&resource)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .policy_type(PolicyType::TargetTrackingScaling)
            .target_tracking_scaling_policy_configuration(tracking)
            .send()
            .await
            .map_err(|e| aws_error(format!("putting the scaling policy of `{resource}`"), &e))?;
        Ok(())
    }

    /// Removes the service's policies and scalable target; none there is fine.
    ///
    /// # Errors
    /// When Application Auto Scaling cannot be asked or refuses.
    pub async fn remove(&self, cluster: &str, service: &str) -> Result<(), DeployError> {
        let resource = Self::resource_id(cluster, service);
        let targets = self
            .client
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_ids(&resource)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .send()
            .await
            .map_err(|e| aws_error(format!("looking up autoscaling of `{resource}`"), &e))?;
        if targets.scalable_targets().is_empty() {
            return Ok(());
        }
        let policies = self
            .client
            .describe_scaling_policies()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(&resource)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .send()
            .await
            .map_err(|e| aws_error(format!("looking up scaling policies of `{resource}`"), &e))?;
        for policy in policies.scaling_policies() {
            self.client
                .delete_scaling_policy()
                .policy_name(policy.policy_name())
                .service_namespace(ServiceNamespace::Ecs)
                .resource_id(&resource)
                .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                .send()
                .await
                .map_err(|e| {
                    aws_error(
                        format!(
                            "deleting scaling policy `{}` of `{resource}`",
                            policy.policy_name()
                        ),
                        &e,
                    )
                })?;
        }
        self.client
            .deregister_scalable_target()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(&resource)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .send()
            .await
            .map_err(|e| aws_error(format!("deregistering `{resource}` from autoscaling"), &e))?;
        Ok(())
    }
}
