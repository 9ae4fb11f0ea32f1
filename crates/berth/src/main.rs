//! `berth`: the container image registry binary.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "berth", version, about = "Berth, a container image registry")]
struct Cli {
    /// TOML configuration file (every key can also be set with BERTH_* variables).
    #[arg(long, short, global = true, env = "BERTH_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the registry (the default).
    Serve,
    /// Print the effective configuration (secrets redacted) and exit.
    Config,
    /// Manage accounts, groups, namespaces, permissions and registry users.
    #[command(subcommand)]
    Admin(berth::admin::AdminCommand),
    /// Collect garbage now (safe while Berth is serving).
    Gc {
        /// Only report what would be reclaimed.
        #[arg(long)]
        dry_run: bool,
        /// Also list the storage for objects no metadata knows.
        #[arg(long)]
        full: bool,
    },
}

fn main() -> std::process::ExitCode {
    berth::memory::configure();
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One readable line (with its causes), never a backtrace.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Log to standard error (command-line tools keep standard output for results).
fn log_to_stderr(filter: &str) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(filter).context("log filter")?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let config = berth::Config::load(cli.config.as_deref(), std::env::vars())?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Config => {
            println!("{config:#?}");
            Ok(())
        }
        Command::Gc { dry_run, full } => {
            // Progress and the dry run's list go to standard error.
            log_to_stderr("info,sqlx=warn")?;
            runtime()?.block_on(berth::gc::run(&config, dry_run, full))
        }
        Command::Admin(command) => {
            log_to_stderr("warn")?;
            runtime()?.block_on(berth::admin::run(&config, command))
        }
        Command::Serve => {
            let filter = EnvFilter::try_from_default_env()
                .or_else(|_| EnvFilter::try_new(&config.log))
                .context("invalid log filter")?;
            tracing_subscriber::fmt().with_env_filter(filter).init();
            runtime()?.block_on(async {
                let server = berth::start(config).await?;
                server.run_until_signal().await
            })
        }
    }
}
