//! An ECS cluster on the emulator and the part of ECS it lacks: a network, a cluster and
//! [`EcsScheduler`], which runs the tasks services want (moto's services start none). Shared
//! by the registry's deployer tests and the AWS cell (`functions/tests/cell`).

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use plinth_registry::deploy::ecs::EcsSettings;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A VPC with one subnet and one security group, and an ECS cluster: what a deployer needs.
pub async fn ecs_config(sdk: &SdkConfig, name: &str) -> EcsSettings {
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .send()
        .await
        .expect("create vpc");
    let vpc_id = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .expect("vpc id")
        .to_owned();
    // Tasks' network interfaces get private DNS names (as Service Connect needs).
    ec2.modify_vpc_attribute()
        .vpc_id(&vpc_id)
        .enable_dns_hostnames(
            aws_sdk_ec2::types::AttributeBooleanValue::builder()
                .value(true)
                .build(),
        )
        .send()
        .await
        .expect("enable DNS hostnames");
    let subnet = ec2
        .create_subnet()
        .vpc_id(&vpc_id)
        .cidr_block("10.0.1.0/24")
        .send()
        .await
        .expect("create subnet");
    let subnet_id = subnet
        .subnet()
        .and_then(|s| s.subnet_id())
        .expect("subnet id");
    let group = ec2
        .create_security_group()
        .group_name(name)
        .description("plinth deployer test")
        .vpc_id(&vpc_id)
        .send()
        .await
        .expect("create security group");
    let cluster = aws_sdk_ecs::Client::new(sdk)
        .create_cluster()
        .cluster_name(name)
        .send()
        .await
        .expect("create cluster");
    EcsSettings {
        cluster: cluster
            .cluster()
            .and_then(|c| c.cluster_name())
            .expect("cluster")
            .to_owned(),
        subnets: vec![subnet_id.to_owned()],
        security_groups: vec![group.group_id().expect("group id").to_owned()],
        execution_role_arn: "arn:aws:iam::123456789012:role/plinth-ecs-execution".into(),
        task_role_arn: Some("arn:aws:iam::123456789012:role/plinth-module-task".into()),
        namespace: "plinth.internal".into(),
        log_group: Some("/plinth/modules".into()),
        desired_count: 1,
        steady_timeout: Duration::from_secs(20),
        poll_interval: Duration::from_millis(100),
        max_tasks: 10,
    }
}

/// What ECS's scheduler does for a task definition, in [`EcsScheduler`].
pub type Fate = Arc<dyn Fn(&str) -> TaskFate + Send + Sync>;

/// Whether the tasks of a task definition keep running or crash at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskFate {
    Runs,
    Crashes,
}

/// The part of ECS the emulator lacks: moto's services start no tasks and keep
/// `runningCount` at 0. This runs (`RunTask`, in the service's group) the tasks each active
/// service of the cluster wants, stops those of other task definitions or of services gone,
/// and reports them running through moto's only lever (`UpdateService` with the same
/// `desiredCount`). Tasks whose fate is [`TaskFate::Crashes`] stop at once with ECS's words.
/// Stops when dropped.
pub struct EcsScheduler(tokio::task::JoinHandle<()>);

impl Drop for EcsScheduler {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What ECS says of a task whose essential container exited.
pub const CRASHED: &str = "Essential container in task exited";

impl EcsScheduler {
    pub async fn start(sdk: &SdkConfig, settings: &EcsSettings, fate: Fate) -> Self {
        // moto moves a task one state on (RUNNING, DEACTIVATING, … STOPPED) each time it is
        // described; ECS keeps a task running until it is stopped.
        let transition = json!({"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1_000_000_000}});
        let body = transition.to_string();
        call(
            "ecs",
            "POST",
            "/moto-api/state-manager/set-transition",
            "application/json",
            body.as_bytes(),
        )
        .await;
        let ecs = aws_sdk_ecs::Client::new(sdk);
        let settings = settings.clone();
        Self(tokio::spawn(async move {
            loop {
                schedule(&ecs, &settings, &fate).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }))
    }
}

async fn schedule(ecs: &aws_sdk_ecs::Client, settings: &EcsSettings, fate: &Fate) {
    let cluster = settings.cluster.as_str();
    let Ok(listed) = ecs.list_services().cluster(cluster).send().await else {
        return;
    };
    if listed.service_arns().is_empty() {
        return;
    }
    let Ok(described) = ecs
        .describe_services()
        .cluster(cluster)
        .set_services(Some(listed.service_arns().to_vec()))
        .send()
        .await
    else {
        return;
    };
    let running = running_tasks(ecs, cluster).await;
    for service in described.services() {
        let name = service.service_name().unwrap_or_default();
        let group = format!("service:{name}");
        let wanted = service.task_definition().unwrap_or_default();
        let active = service.status() == Some("ACTIVE");
        let mut current = 0;
        for task in running.iter().filter(|t| t.group() == Some(group.as_str())) {
            let arn = task.task_arn().unwrap_or_default();
            if active && task.task_definition_arn() == Some(wanted) {
                current += 1;
            } else {
                let reason = "Scaling activity initiated by deployment";
                let _ = ecs
                    .stop_task()
                    .cluster(cluster)
                    .task(arn)
                    .reason(reason)
                    .send()
                    .await;
            }
        }
        if !active {
            continue;
        }
        let desired = service.desired_count();
        if current < desired {
            let network = aws_sdk_ecs::types::NetworkConfiguration::builder()
                .awsvpc_configuration(
                    aws_sdk_ecs::types::AwsVpcConfiguration::builder()
                        .set_subnets(Some(settings.subnets.clone()))
                        .set_security_groups(Some(settings.security_groups.clone()))
                        .build()
                        .expect("network"),
                )
                .build();
            let started = ecs
                .run_task()
                .cluster(cluster)
                .task_definition(wanted)
                .count(desired - current)
                .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
                .group(&group)
                .started_by("ecs-svc/test-scheduler")
                .network_configuration(network)
                .send()
                .await
                .expect("run task");
            if fate(wanted) == TaskFate::Crashes {
                for task in started.tasks() {
                    let arn = task.task_arn().unwrap_or_default();
                    let _ = ecs
                        .stop_task()
                        .cluster(cluster)
                        .task(arn)
                        .reason(CRASHED)
                        .send()
                        .await;
                }
                continue;
            }
        }
        if fate(wanted) == TaskFate::Runs && service.running_count() != desired {
            let _ = ecs
                .update_service()
                .cluster(cluster)
                .service(name)
                .desired_count(desired)
                .send()
                .await;
        }
    }
}

/// The cluster's tasks that are running, described.
pub async fn running_tasks(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
) -> Vec<aws_sdk_ecs::types::Task> {
    let listed = ecs
        .list_tasks()
        .cluster(cluster)
        .desired_status(aws_sdk_ecs::types::DesiredStatus::Running)
        .send()
        .await;
    let arns = listed.map(|l| l.task_arns().to_vec()).unwrap_or_default();
    if arns.is_empty() {
        return Vec::new();
    }
    let described = ecs
        .describe_tasks()
        .cluster(cluster)
        .set_tasks(Some(arns))
        .send()
        .await;
    described.map(|d| d.tasks().to_vec()).unwrap_or_default()
}

/// One HTTP/1.1 request to the emulator; moto routes it by the service named in the
/// credential scope and does not check the signature. Panics unless it answers 2xx; gives
/// back the whole answer.
pub async fn call(
    service: &str,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> String {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL");
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(host)
        .await
        .expect("connect to the emulator");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0\r\n\
         x-amz-content-sha256: UNSIGNED-PAYLOAD\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("send");
    stream.write_all(body).await.expect("send body");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read answer");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    assert!(
        answer.starts_with("HTTP/1.1 20"),
        "{service} {method} {path}: {answer}"
    );
    answer
}
