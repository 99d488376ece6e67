//! `plinth`: the platform on one machine and the admin CLI. See `plinth --help`.

use std::process::ExitCode;

use clap::Parser;
use plinth_local::cli::{Cli, run};

fn main() -> ExitCode {
    run(Cli::parse()).into()
}
