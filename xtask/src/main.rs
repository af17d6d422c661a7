//! `cargo xtask <command>`: project automation.

use std::path::Path;
use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <command>\n\ncommands:\n  policies   build the policies/ workspace to wasm components and list them";

fn main() -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root");
    let command = std::env::args().nth(1);
    let result = match command.as_deref() {
        Some("policies") => xtask::policies::build_policies(root).map(|components| {
            for component in components {
                println!("{}", component.display());
            }
        }),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
