//! The AWS adapters of the `Deployer` and `TableProvisioner` ports against the emulator (moto,
//! started by `./tests/run`): ECS services from ECR images, Lambda functions, module tables,
//! modules' API Gateway routes; and the ECR image-action events on their fixtures.

#[path = "../support/mod.rs"]
mod support;

mod ecr_events;
mod ecs;
mod identity;
mod key_rotation;
mod lambda;
mod moto;
mod reach;
mod routes;
mod tables;
