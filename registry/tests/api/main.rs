//! The platform's HTTP API, driven in-process through its router, on both stores.

#[path = "../support/mod.rs"]
mod support;

mod catalog;
mod contract;
mod hardening;
mod install;
mod module_events;
mod reach_ecs;
mod reads;
mod rollouts;
mod sweep;
mod tenancy;
mod versions;

/// The router the scenarios are driven through: the platform API alone.
const ROUTER: support::api::MakeRouter = plinth_registry::App::api;
