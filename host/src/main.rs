//! The `caje` command: `serve` a node, check and try `policy` modules, run the bundled `demo-origin`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use caje::config::Config;
use caje::logging::LogConfig;
use caje::policy::cli::PolicyCommand;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "caje",
    version,
    about = "A small, fast, programmable caching reverse proxy."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a caje node: the caching proxy on the config's `listen` address.
    Serve {
        /// The TOML config file (relative paths inside it are relative to the file).
        #[arg(long, short, default_value = "caje.toml", env = "CAJE_CONFIG")]
        config: PathBuf,
    },
    /// Check and try out cache policy modules.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Run the bundled demo origin (slow and fast pages, validators, Vary, large bodies).
    DemoOrigin {
        #[arg(long, default_value = "127.0.0.1:9001")]
        listen: SocketAddr,
        /// How long `GET /slow` takes.
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        slow_delay: Duration,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => {
            let config = match Config::load(&config) {
                Ok(config) => config,
                Err(err) => {
                    eprintln!("error: {err}");
                    return ExitCode::from(2);
                }
            };
            caje::logging::init(&config.log);
            run(caje::app::serve(config))
        }
        Command::Policy(command) => caje::app::policy_command(command).unwrap_or_else(|err| {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }),
        Command::DemoOrigin { listen, slow_delay } => {
            caje::logging::init(&LogConfig::default());
            run(async move {
                let origin = caje::demo_origin::DemoOrigin::start(listen, slow_delay).await?;
                tracing::info!(listen = %origin.addr, "demo origin is serving");
                tokio::signal::ctrl_c().await?;
                Ok(())
            })
        }
    }
}

fn run(work: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
