//! The AWS adapters of the `Deployer` and `TableProvisioner` ports against the emulator (moto,
//! started by `./tests/run`): ECS services from ECR images, Lambda functions, module tables,
//! modules' API Gateway routes and the module listener's rules per version; the ECR image-action events on their fixtures, and pushed
//! images that publish (finding 11).

#[path = "../support/mod.rs"]
mod support;

#[path = "../support/ecs_cluster.rs"]
mod ecs_cluster;

mod ecr_events;
mod ecr_publish;
mod ecs;
mod identity;
mod key_rotation;
mod lambda;
mod moto;
mod reach;
mod routes;
mod tables;
mod versions;
