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
    if matches!(
        cli.command,
        eugate::cli::Command::Serve(_) | eugate::cli::Command::Demo(_)
    ) {
        pin_malloc_thresholds();
    }
    eugate::cli::init_tracing(cli.verbose, cli.log_format);
    match eugate::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            // `{:#}` prints the whole context chain on one line: "what failed: why".
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}

/// glibc keeps what a burst of uploads took: its mmap threshold rises to the largest block freed,
/// so later part buffers (~256 KiB) come from the heap, which does not shrink. Pinned at 256 KiB,
/// a burst's buffers go back to the kernel (docs/benchmarks.md: the downloads after 64 concurrent
/// uploads peaked at 271-303 instead of 401-478 MiB). Pinning it also pins the trim threshold,
/// whose default (128 KiB) made every heap return its top as soon as the 32 KiB SSH messages of
/// an upload were freed, and fault it back in for the next ones: raised to 8 MiB, an upload
/// took 0.07-0.18 CPU-s/GiB less (4 interleaved pairs). glibc reads these only from the
/// environment at startup (`mallopt` would need unsafe FFI), so a gateway re-executes itself
/// once with them set. The mmap threshold already set, to anything: the operator's values stand.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn pin_malloc_thresholds() {
    use std::os::unix::process::CommandExt;
    const MMAP: (&str, &str) = ("MALLOC_MMAP_THRESHOLD_", "262144");
    const TRIM: (&str, &str) = ("MALLOC_TRIM_THRESHOLD_", "8388608");
    if std::env::var_os(MMAP.0).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut again = std::process::Command::new(exe);
    again.args(std::env::args_os().skip(1)).env(MMAP.0, MMAP.1);
    if std::env::var_os(TRIM.0).is_none() {
        again.env(TRIM.0, TRIM.1);
    }
    let err = again.exec();
    // `exec` returns only if it failed (e.g. the binary was replaced on disk): go on as we are.
    let (var, value) = MMAP;
    eprintln!("warning: could not re-execute with {var}={value} ({err}); continuing without it");
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn pin_malloc_thresholds() {}
