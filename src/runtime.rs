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

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Async worker threads, at most.
pub const MAX_WORKERS: usize = 2;
/// Threads for blocking work (disk, password hashing), at most.
pub const MAX_BLOCKING: usize = 1;

/// For the commands that serve (`run`, `demo`, `hq-receiver`): logs to
/// stderr (`RUST_LOG`, else `default_level`) and starts the runtime. On
/// failure it says why on stderr, as `who`, and gives the exit code.
pub fn start(who: &str, default_level: &str) -> Result<tokio::runtime::Runtime, ExitCode> {
    init_logging(default_level);
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

/// Logs to stderr, filtered by `RUST_LOG` (see [`log_filter`]), else at
/// `default_level`; colours only on a terminal. Also for `storegate-hq`.
pub fn init_logging(default_level: &str) {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_max_level(tracing::Level::TRACE)
        .finish()
        .with(log_filter(
            std::env::var("RUST_LOG").ok().as_deref(),
            default_level,
        ))
        .try_init();
}

/// The log filter: `RUST_LOG` as comma-separated `level` and
/// `target=level` directives (`warn`, `info,storegate::portal=debug`),
/// else `default_level`. A `RUST_LOG` that does not parse is reported on
/// stderr and the default used. (Targets only: span and field filters
/// would pull a regular-expression engine into a router's binary.)
fn log_filter(rust_log: Option<&str>, default_level: &str) -> Targets {
    let fallback = || default_level.parse().unwrap_or_else(|_| Targets::new());
    match rust_log.map(str::trim).filter(|s| !s.is_empty()) {
        None => fallback(),
        Some(spec) => spec.parse().unwrap_or_else(|e| {
            eprintln!("RUST_LOG={spec:?} ignored ({e}); logging at {default_level}");
            fallback()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn rust_log_directives_pick_levels_per_target() {
        let f = log_filter(Some("warn,storegate::portal=debug"), "info");
        assert!(f.would_enable("storegate::portal::routes", &Level::DEBUG));
        assert!(!f.would_enable("storegate::presence", &Level::INFO));
        assert!(f.would_enable("storegate::presence", &Level::WARN));
        let d = log_filter(None, "info");
        assert!(d.would_enable("storegate::daemon", &Level::INFO));
        assert!(!d.would_enable("storegate::daemon", &Level::DEBUG));
        // Nonsense falls back to the default, not to silence.
        let bad = log_filter(Some("storegate=loud"), "info");
        assert!(bad.would_enable("storegate::daemon", &Level::INFO));
    }
}
