//! The `caje` command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use caje::policy::cli::PolicyCommand;

#[derive(Debug, Parser)]
#[command(
    name = "caje",
    version,
    about = "A small, fast, programmable caching reverse proxy."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check and try out cache policy modules.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Policy(command) => caje::policy::cli::run(command),
    };
    result.unwrap_or_else(|err| {
        eprintln!("error: {err:#}");
        ExitCode::FAILURE
    })
}
