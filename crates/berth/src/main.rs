//! `berth`: the container image registry binary.

use std::path::PathBuf;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
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
    /// Check integrity now: re-hash stored blobs, find dangling references
    /// and orphaned objects (safe while Berth is serving).
    Fsck {
        /// Copy damaged or missing blobs back from a good copy in another region.
        #[arg(long)]
        repair: bool,
        /// Re-hash at most this many MiB per second.
        #[arg(long, value_name = "MIB_PER_SEC")]
        rate: Option<u64>,
    },
    /// Back up the embedded database and its blobs into DEST while Berth
    /// serves (a second backup into DEST copies only new blobs).
    Backup {
        /// The backup directory (created if missing).
        dest: PathBuf,
    },
    /// Restore a backup made by `berth backup` into an empty data directory.
    Restore {
        /// The backup directory.
        src: PathBuf,
    },
}

fn main() -> std::process::ExitCode {
    berth::memory::configure();
    // `--version` names the schema too: the one this build migrates to.
    let version = format!(
        "{} (schema {})",
        env!("CARGO_PKG_VERSION"),
        berth_meta::SCHEMA_VERSION
    );
    // Made once and kept for the life of the process (clap takes `&'static str`).
    let version: &'static str = Box::leak(version.into_boxed_str());
    let matches = Cli::command().version(version).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match run(cli) {
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
        Command::Fsck { repair, rate } => {
            log_to_stderr("warn,sqlx=warn")?;
            runtime()?.block_on(berth::fsck::run(&config, repair, rate))
        }
        Command::Backup { dest } => {
            log_to_stderr("info,sqlx=warn")?;
            runtime()?.block_on(berth::backup::backup(&config, &dest))
        }
        Command::Restore { src } => {
            log_to_stderr("info,sqlx=warn")?;
            runtime()?.block_on(berth::backup::restore(&config, &src))
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
