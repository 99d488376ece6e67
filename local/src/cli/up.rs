//! `plinth up`: the platform on this machine. Its flags are fixed now so that scripts written
//! against them keep working when the command arrives.

use std::io::{self, Write};
use std::path::PathBuf;

use super::Exit;

/// Arguments of `plinth up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Port the local API gateway listens on.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Folder of the embedded store's data.
    #[arg(long, default_value = ".plinth")]
    pub data_dir: PathBuf,
    /// Install the example modules and a demo tenant.
    #[arg(long)]
    pub demo: bool,
    /// Use AWS services (or the emulator at AWS_ENDPOINT_URL) instead of the embedded store
    /// and local bus.
    #[arg(long)]
    pub aws: bool,
}

/// Says that the command is not here yet.
pub(super) fn run(_args: &UpArgs, out: &mut dyn Write) -> io::Result<Exit> {
    writeln!(
        out,
        "plinth up is not available yet: it arrives with its own issue. Nothing was started."
    )?;
    Ok(Exit::Success)
}
