//! Command-line interface: one file per subcommand.
//!
//! To add a subcommand: a file here with its `Args` and a `run` function, a variant of
//! [`Command`], and its arm in [`run`].

mod client;
mod company;
mod config;
mod dev;
mod events;
mod manifest;
mod module;
mod module_new;
mod tenant;
mod token;
mod up;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use client::{Output, Target};
pub use company::{CompanyArgs, CompanyCommand};
pub use config::{ConfigArgs, ConfigCommand};
pub use dev::DevArgs;
pub use events::{EventsArgs, EventsCommand};
pub use manifest::{ManifestArgs, ManifestCommand};
pub use module::{ModuleArgs, ModuleCommand};
pub use module_new::NewArgs;
pub use tenant::{TenantArgs, TenantCommand};
pub use token::TokenArgs;
pub use up::UpArgs;

/// `plinth`: run Plinth on this machine and administer a local or deployed Plinth.
#[derive(Debug, Parser)]
#[command(name = "plinth", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the platform on this machine.
    Up(UpArgs),
    /// Work with module manifests.
    Manifest(ManifestArgs),
    /// Work with events and event patterns.
    Events(EventsArgs),
    /// Work with modules: start a new one, publish, install, upgrade, roll back, uninstall.
    Module(ModuleArgs),
    /// Create tenants; enable and disable modules for them.
    Tenant(TenantArgs),
    /// Create companies; set a company's module override.
    Company(CompanyArgs),
    /// Read a module's resolved configuration.
    Config(ConfigArgs),
    /// Print a development token (JWT) for local use.
    Token(TokenArgs),
}

/// How a command ended, which decides the process's exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It did what was asked (status 0).
    Success,
    /// It ran, and found problems in its input (status 1).
    Problems,
    /// It could not run: unreadable input, bad arguments, I/O errors (status 2).
    Failure,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        match exit {
            Exit::Success => ExitCode::SUCCESS,
            Exit::Problems => ExitCode::from(1),
            Exit::Failure => ExitCode::from(2),
        }
    }
}

/// Runs a parsed command line, writing results to stdout and errors to stderr.
#[must_use]
pub fn run(cli: Cli) -> Exit {
    // Not locked for the whole command: `plinth up` logs from other threads while it runs.
    let mut out = io::stdout();
    let mut err = io::stderr();
    run_with(cli, &mut out, &mut err)
}

/// Runs a parsed command line against the given output streams.
pub fn run_with(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> Exit {
    let result = match cli.command {
        Command::Up(args) => up::run(&args, out, err),
        Command::Manifest(args) => manifest::run(args, out, err),
        Command::Events(args) => events::run(args, out, err),
        Command::Module(args) => module::run(args, out, err),
        Command::Tenant(args) => tenant::run(args, out, err),
        Command::Company(args) => company::run(args, out, err),
        Command::Config(args) => config::run(args, out, err),
        Command::Token(args) => token::run(&args, out, err),
    };
    result.unwrap_or_else(|error| {
        // The output itself failed (say, a closed pipe); there is nowhere better to say so.
        let _ = writeln!(err, "error: cannot write output: {error}");
        Exit::Failure
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn up_keeps_its_flags() {
        let cli = Cli::try_parse_from([
            "plinth",
            "up",
            "--port",
            "9000",
            "--data-dir",
            "/tmp/p",
            "--demo",
            "--aws",
        ])
        .expect("parses");
        let Command::Up(args) = cli.command else {
            panic!("expected `up`");
        };
        assert_eq!(args.port, 9000);
        assert_eq!(args.data_dir, std::path::PathBuf::from("/tmp/p"));
        assert!(args.demo && args.aws);
    }
}
