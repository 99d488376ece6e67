//! Command-line interface: one file per subcommand.
//!
//! To add a subcommand: a file here with its `Args` and a `run` function, a variant of
//! [`Command`], and its arm in [`run`].

mod access;
mod audit;
mod client;
mod company;
mod config;
mod dead_letter;
mod dev;
mod enablement;
mod events;
mod feature;
mod key;
mod manifest;
mod module;
mod module_new;
mod module_read;
mod rollout;
mod table;
mod tenant;
mod token;
mod up;
mod usage;
mod version;
mod versions;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use access::{AssignmentArgs, AssignmentCommand, RoleArgs, RoleCommand};
pub use audit::{AuditArgs, AuditCommand};
pub use client::{Output, Target};
pub use company::{CompanyArgs, CompanyCommand};
pub use config::{ConfigArgs, ConfigCommand};
pub use dead_letter::{DeadLetterArgs, DeadLetterCommand};
pub use dev::DevArgs;
pub use enablement::{EnablementArgs, EnablementCommand};
pub use events::{EventsArgs, EventsCommand};
pub use feature::{FeatureArgs, FeatureCommand};
pub use key::{KeyArgs, KeyCommand};
pub use manifest::{ManifestArgs, ManifestCommand};
pub use module::{ModuleArgs, ModuleCommand};
pub use module_new::NewArgs;
pub use tenant::{TenantArgs, TenantCommand};
pub use token::TokenArgs;
pub use up::UpArgs;
pub use usage::UsageArgs;
pub use version::{VersionArgs, VersionCommand};

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
    /// Work with modules: list, show, start a new one, publish, install, upgrade, roll back,
    /// uninstall.
    Module(ModuleArgs),
    /// A module's published versions: list, show.
    Version(VersionArgs),
    /// Tenants: list, show, create; enable and disable modules for them.
    Tenant(TenantArgs),
    /// Companies: list, show, create; set a company's module override.
    Company(CompanyArgs),
    /// Which modules a tenant has enabled, with its configuration: list, show.
    Enablement(EnablementArgs),
    /// A module's resolved configuration (get); one key of it (set).
    Config(ConfigArgs),
    /// A module's feature toggles for a tenant or company: list, show.
    Feature(FeatureArgs),
    /// A tenant's roles: list, show.
    Role(RoleArgs),
    /// Who holds which roles in a tenant: list, show.
    Assignment(AssignmentArgs),
    /// A tenant's audit log: list.
    Audit(AuditArgs),
    /// A module's API keys: list, show.
    Key(KeyArgs),
    /// Events `plinth up`'s bus could not deliver: list, replay.
    DeadLetter(DeadLetterArgs),
    /// What tenants used of their modules, by hour or day, with bill estimates (`--csv`).
    Usage(UsageArgs),
    /// Print a development token (JWT) for local use.
    Token(TokenArgs),
}

impl Command {
    /// The Plinth an admin command talks to (none for the commands that run here).
    fn target(&mut self) -> Option<&mut Target> {
        match self {
            Command::Module(a) => Some(&mut a.target),
            Command::Version(a) => Some(&mut a.target),
            Command::Tenant(a) => Some(&mut a.target),
            Command::Company(a) => Some(&mut a.target),
            Command::Enablement(a) => Some(&mut a.target),
            Command::Config(a) => Some(&mut a.target),
            Command::Feature(a) => Some(&mut a.target),
            Command::Role(a) => Some(&mut a.target),
            Command::Assignment(a) => Some(&mut a.target),
            Command::Audit(a) => Some(&mut a.target),
            Command::Key(a) => Some(&mut a.target),
            Command::DeadLetter(a) => Some(&mut a.target),
            Command::Usage(a) => Some(&mut a.target),
            Command::Up(_) | Command::Manifest(_) | Command::Events(_) | Command::Token(_) => None,
        }
    }
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
pub fn run_with(mut cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> Exit {
    if let Some(target) = cli.command.target() {
        target.settle();
    }
    let result = match cli.command {
        Command::Up(args) => up::run(&args, out, err),
        Command::Manifest(args) => manifest::run(args, out, err),
        Command::Events(args) => events::run(args, out, err),
        Command::Module(args) => module::run(args, out, err),
        Command::Tenant(args) => tenant::run(args, out, err),
        Command::Company(args) => company::run(args, out, err),
        Command::Config(args) => config::run(args, out, err),
        Command::Version(args) => version::run(args, out, err),
        Command::Enablement(args) => enablement::run(args, out, err),
        Command::Feature(args) => feature::run(args, out, err),
        Command::Role(args) => access::run_role(args, out, err),
        Command::Assignment(args) => access::run_assignment(args, out, err),
        Command::Audit(args) => audit::run(args, out, err),
        Command::Key(args) => key::run(args, out, err),
        Command::DeadLetter(args) => dead_letter::run(args, out, err),
        Command::Usage(args) => usage::run(&args, out, err),
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
