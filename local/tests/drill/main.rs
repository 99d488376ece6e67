//! The reliability drills of issue 22, against `plinth up` run as a real process:
//! - [`installer`]: the installer killed (SIGKILL) after each saga step in turn, on both
//!   stores, started again → the same end state as an uninterrupted install, nothing created
//!   twice, no module process orphaned;
//! - [`shutdown`]: `plinth up` stopped (SIGTERM, then SIGKILL) in the middle of an install,
//!   a rollout of configuration and a burst of events, started again → every acknowledged
//!   change there, the install resumed, no module process left running.
//!
//! RELIABILITY.md has the figures of the last run.

mod installer;
mod shutdown;
mod support;

/// Not a test: the module backend the drills' platforms start (see
/// [`support::backend_command`]); without the drill's environment it does nothing.
#[test]
#[ignore = "run by the drills as a module backend, a child process of plinth up"]
fn module_backend_process() {
    if let (Ok(port), Ok(control)) = (std::env::var("PORT"), std::env::var(support::CONTROL_ENV)) {
        support::serve_backend(&port, &control);
    }
}
