//! Process start-up for the commands that serve (`run`, `demo`,
//! `hq-receiver`): logging to stderr and the async runtime.
//!
//! The runtime is sized for a router, not a server: at most
//! [`MAX_WORKERS`] async workers (one per core up to that) and a blocking
//! pool of [`MAX_BLOCKING`] thread (fsyncs, saves, password hashing), so
//! the process never runs more than 4 threads with the main one, where
//! tokio's defaults give a worker per core and a blocking pool of up to
//! 512. A blocking thread exits after 10 s idle. The portal's hot path
//! (redirects) never leaves the workers; sign-ins and saves queue for the
//! one blocking thread, which is idle nearly all the time.

use std::process::ExitCode;

/// Async worker threads, at most.
pub const MAX_WORKERS: usize = 2;
/// Threads for blocking work (disk, password hashing), at most.
pub const MAX_BLOCKING: usize = 1;

/// For the commands that serve (`run`, `demo`, `hq-receiver`): logs to
/// stderr (`RUST_LOG`, else `default_level`) and starts the runtime. On
/// failure it says why on stderr, as `who`, and gives the exit code.
pub fn start(who: &str, default_level: &str) -> Result<tokio::runtime::Runtime, ExitCode> {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .try_init();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores.clamp(1, MAX_WORKERS))
        .max_blocking_threads(MAX_BLOCKING)
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("{who}: cannot start the runtime: {e}");
            ExitCode::from(1)
        })
}
