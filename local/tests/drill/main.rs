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
