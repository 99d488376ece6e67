//! The `plinth` command: the platform on one machine and the admin CLI.
//!
//! The binary (`src/main.rs`) only parses arguments and calls [`cli::run`]; each subcommand
//! lives in its own file under `src/cli/`.

#[cfg(feature = "platform")]
pub mod cli;
/// The console, served beside the platform API (the `plinth-console` crate).
#[cfg(feature = "platform")]
pub use plinth_console as console;
pub mod gateway;
#[cfg(feature = "platform")]
pub mod platform;
