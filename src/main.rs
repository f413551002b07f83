//! Thin binary: parse the command line, hand over to the library.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

// The system allocator, not mimalloc (DESIGN.md asked for a fast one): with part buffers
// recycled through a pool, glibc malloc measured the same CPU per GiB and much less memory
// (one 1 GiB upload: 57 vs 80-89 MiB peak RSS; 32 concurrent: 300 vs 337-422 MiB;
// docs/benchmarks.md).

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
