//! Process start-up for the commands that serve (`run`, `demo`,
//! `hq-receiver`): logging to stderr and the async runtime.

use std::process::ExitCode;

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
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("{who}: cannot start the runtime: {e}");
            ExitCode::from(1)
        })
}
