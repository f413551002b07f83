//! Thin binary: parse the command line, hand over to the library.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

// A fast allocator matters on the upload path (many short-lived 64 KiB buffers).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = eugate::cli::Cli::parse();
    eugate::cli::init_tracing(cli.verbose);
    match eugate::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            // `{:#}` prints the whole context chain on one line: "what failed: why".
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}
