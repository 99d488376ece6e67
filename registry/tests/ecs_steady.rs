//! When an ECS deploy may go on (issue #18, finding 4), judged on `DescribeServices` and
//! `DescribeTasks` answers as ECS gives them (fixtures/ecs/). The emulator cannot show most
//! of these states (its services start no tasks, its rollouts never end): the deployer's
//! polling on the emulator is in deploy_aws/ecs.rs.

use plinth_registry::deploy::ecs_steady::{
    Progress, ServiceState, TaskState, assess, last_stopped_reason,
};
use serde_json::Value;

const NEW: &str = "arn:aws:ecs:eu-west-1:123456789012:task-definition/plinth-billing:4";

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/ecs/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).expect("JSON")
}

fn service(name: &str) -> ServiceState {
    serde_json::from_value(fixture(name)["services"][0].clone()).expect("a service")
}

fn tasks(name: &str) -> Vec<TaskState> {
    serde_json::from_value(fixture(name)["tasks"].clone()).expect("tasks")
}

#[test]
fn a_steady_service_with_healthy_tasks_gives_their_private_addresses() {
    let progress = assess(
        &service("describe-services-steady.json"),
        NEW,
        &tasks("describe-tasks-healthy.json"),
        true,
    );

    assert_eq!(
        progress,
        Progress::Steady(vec!["10.0.1.17".into(), "10.0.2.41".into()])
    );
}

#[test]
fn a_deploy_waits_while_a_task_is_not_yet_healthy() {
    let progress = assess(
        &service("describe-services-steady.json"),
        NEW,
        &tasks("describe-tasks-starting.json"),
        true,
    );

    let Progress::Waiting(counts) = progress else {
        panic!("{progress:?}")
    };
    assert!(
        counts.starts_with("2 of 2 task(s) running the new task definition, 1 healthy"),
        "{counts}"
    );
    // Without a container health check, running is enough.
    let unchecked = assess(
        &service("describe-services-steady.json"),
        NEW,
        &tasks("describe-tasks-starting.json"),
        false,
    );
    assert!(matches!(unchecked, Progress::Steady(_)), "{unchecked:?}");
}

#[test]
fn a_deploy_waits_while_the_old_deployment_drains() {
    let progress = assess(
        &service("describe-services-rolling-out.json"),
        NEW,
        &tasks("describe-tasks-healthy.json"),
        true,
    );

    let Progress::Waiting(counts) = progress else {
        panic!("{progress:?}")
    };
    assert!(
        counts.contains("3 running, 1 pending, 2 deployment(s)"),
        "{counts}"
    );
}

#[test]
fn a_rollout_the_circuit_breaker_failed_fails_with_its_reason() {
    let progress = assess(
        &service("describe-services-failed.json"),
        NEW,
        &tasks("describe-tasks-healthy.json"),
        true,
    );

    assert_eq!(
        progress,
        Progress::Failed(
            "the deployment of service `plinth-billing` failed: ECS deployment circuit breaker: tasks failed to start."
                .into()
        )
    );
}

#[test]
fn a_service_that_moved_to_another_task_definition_fails() {
    let mut service = service("describe-services-steady.json");
    service.deployments.clear();
    service.task_definition = NEW.replace(":4", ":5");

    let progress = assess(&service, NEW, &tasks("describe-tasks-healthy.json"), true);

    let Progress::Failed(why) = progress else {
        panic!("{progress:?}")
    };
    assert!(
        why.contains(
            "runs `arn:aws:ecs:eu-west-1:123456789012:task-definition/plinth-billing:5` instead of"
        ),
        "{why}"
    );
}

#[test]
fn tasks_of_an_earlier_task_definition_do_not_count() {
    let mut old = tasks("describe-tasks-healthy.json");
    for task in &mut old {
        task.task_definition_arn = NEW.replace(":4", ":3");
    }

    let progress = assess(&service("describe-services-steady.json"), NEW, &old, true);

    assert!(matches!(progress, Progress::Waiting(_)), "{progress:?}");
}

#[test]
fn the_last_stopped_task_says_why() {
    let stopped = tasks("describe-tasks-stopped.json");

    assert_eq!(
        last_stopped_reason(&stopped).as_deref(),
        Some("Essential container in task exited")
    );
    assert_eq!(last_stopped_reason(&[]), None);
}

#[test]
fn health_and_address_come_from_the_containers_when_the_task_has_none() {
    let mut task = tasks("describe-tasks-healthy.json").remove(0);
    task.health_status = None;
    task.attachments.clear();

    assert_eq!(task.health(), "HEALTHY");
    assert_eq!(task.private_ip(), Some("10.0.1.17"));
    task.containers[0].health_status = Some("UNHEALTHY".into());
    assert_eq!(task.health(), "UNKNOWN");
    task.containers.clear();
    assert_eq!(task.private_ip(), None);
}
