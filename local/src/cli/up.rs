//! `plinth up`: the whole platform on this machine.

use std::io::{self, Write};
use std::path::PathBuf;

use super::Exit;
use crate::platform::{self, Options};

/// Arguments of `plinth up`.
#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    /// Port the local API gateway listens on (127.0.0.1).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Folder of the embedded store, secrets and module logs; state survives restarts.
    #[arg(long, default_value = ".plinth")]
    pub data_dir: PathBuf,
    /// Install the example modules and a demo tenant, and print a token and curl commands.
    #[arg(long)]
    pub demo: bool,
    /// Use AWS services at AWS_ENDPOINT_URL (moto or LocalStack): DynamoDB for the store and
    /// module tables, EventBridge and SQS for events. Module backends, the gateway and the
    /// installer stay on this machine.
    #[arg(long)]
    pub aws: bool,
}

pub(super) fn run(args: &UpArgs, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<Exit> {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            writeln!(err, "error: cannot start: {e}")?;
            return Ok(Exit::Failure);
        }
    };
    let working_dir = std::env::current_dir()?;
    let options = Options {
        port: args.port,
        data_dir: args.data_dir.clone(),
        demo: args.demo,
        aws: args.aws.then(platform::AwsNames::from_env),
        working_dir,
    };
    match runtime.block_on(up(&options, out)) {
        Ok(()) => Ok(Exit::Success),
        Err(e) => {
            writeln!(err, "error: {e:#}")?;
            Ok(Exit::Failure)
        }
    }
}

async fn up(options: &Options, out: &mut dyn Write) -> anyhow::Result<()> {
    init_logs();
    let running = platform::start(options).await?;
    let url = format!("http://{}", running.addr);
    if options.aws.is_some() {
        let at = std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "AWS".into());
        writeln!(
            out,
            "Plinth is up at {url} on AWS services at {at}: {}.\n  On this machine: {}.\n  Logs of module backends: {}/logs",
            platform::ON_AWS,
            platform::STAYS_LOCAL,
            options.data_dir.display()
        )?;
    } else {
        writeln!(
            out,
            "Plinth is up at {url} (store: {}/plinth.redb; logs of module backends: {}/logs)",
            options.data_dir.display(),
            options.data_dir.display()
        )?;
    }
    writeln!(out, "  API: {url}/api/v1/…   Stop: Ctrl-C")?;
    let shutdown = async {
        // Ctrl-C, or SIGTERM from a supervisor: either way the module backends are stopped.
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let terminated = async {
            match term.as_mut() {
                Some(term) => {
                    term.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = terminated => {}
        }
    };
    let demo = options.demo.then(|| running.demo());
    let server = tokio::spawn(running.serve(shutdown));
    if let Some(demo) = demo {
        match demo.run(&options.working_dir.join("examples")).await {
            Ok(report) => write!(out, "{}", banner(&url, &report))?,
            Err(e) => writeln!(out, "demo: {e:#}")?,
        }
    }
    out.flush()?;
    server.await?
}

/// What `--demo` prints: the token and curl commands that work as printed.
pub fn banner(url: &str, report: &platform::DemoReport) -> String {
    let token = &report.token;
    format!(
        "\nDemo ready: modules {} enabled for tenant acme (companies acme-us, acme-de).\n\
         A token of acme's admin, in company acme-de (valid 12 h):\n\n  export TOKEN={token}\n\n\
         The German company's financial configuration (the seed's override: EUR, 0.19, ACME-DE):\n\
         \x20 curl -s -H \"Authorization: Bearer $TOKEN\" '{url}/api/v1/tenants/acme/modules/financial/config?company=acme-de'\n\n\
         Create an invoice through the gateway (numbered with the company's prefix, taxed at its rate):\n\
         \x20 curl -s -X POST -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' \\\n\
         \x20      -d '{{\"customer\": \"Globex\", \"amount\": 100}}' {url}/api/v1/financial/invoices\n\n\
         The marketplace:\n\
         \x20 curl -s -H \"Authorization: Bearer $TOKEN\" {url}/api/v1/modules\n",
        report.modules.join(", ")
    )
}

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PLINTH_LOG")
        .unwrap_or_else(|_| "warn,plinth=info".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}
