//! The `plinth` command: the platform on one machine and the admin CLI.
//!
//! The binary (`src/main.rs`) only parses arguments and calls [`cli::run`]; each subcommand
//! lives in its own file under `src/cli/`.

#[cfg(feature = "platform")]
pub mod cli;
#[cfg(feature = "platform")]
pub mod console;
pub mod gateway;
#[cfg(feature = "platform")]
pub mod platform;
