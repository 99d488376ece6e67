//! `plinth`: the platform on one machine and the admin CLI. See `plinth --help`.

use std::process::ExitCode;

use clap::Parser;
use plinth_local::cli::{Cli, run};

/// The gateway allocates per request from two threads at once; mimalloc's per-thread heaps
/// keep that off glibc's arena locks (see BENCHMARKS.md, gateway).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    run(Cli::parse()).into()
}
