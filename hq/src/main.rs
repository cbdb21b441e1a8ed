//! `storegate-hq -c hq.toml [--role gateway|messenger|all]`.

use std::process::ExitCode;

use clap::Parser;

/// HQ's ingest service for storegate boxes, on NATS JetStream.
#[derive(Parser)]
#[command(name = "storegate-hq", version)]
struct Args {
    /// The configuration file (hq.toml).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: std::path::PathBuf,
    /// Overrides `role` in the file: gateway, messenger or all.
    #[arg(long)]
    role: Option<String>,
    /// Only check the configuration, then exit (0 valid, 1 not).
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut config = match storegate_hq::config::HqConfig::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("storegate-hq: {}: {e}", args.config.display());
            return ExitCode::from(2);
        }
    };
    if let Some(role) = args.role {
        match storegate_hq::config::Role::parse(&role) {
            Ok(r) => config.role = r,
            Err(e) => {
                eprintln!("storegate-hq: --role: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if args.check {
        println!(
            "{}: valid ({} stores)",
            args.config.display(),
            config.registry.len()
        );
        return ExitCode::SUCCESS;
    }
    storegate_hq::server::main(config)
}
