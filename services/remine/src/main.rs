//! The `remine` command: parse arguments, set up logging, run the command,
//! map any error to one clear line and a non-zero exit code.

mod cli;
mod commands;
mod plant;
mod server;
mod storage;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    cli::init_tracing(cli.verbose);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return report(anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(e) => report(e),
    }
}

fn report(e: anyhow::Error) -> ExitCode {
    eprintln!("error: {e:#}");
    ExitCode::FAILURE
}
