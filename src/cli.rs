//! The command line (contract in DESIGN.md). `main` only calls `cli::main`.
//! The commands and options are declared in `table`, read by `args`;
//! here each becomes a `Command` and runs.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::{Config, LoadError};
use crate::control::{Request, client};
use crate::mac::MacAddr;

mod args;
mod table;
#[cfg(test)]
mod tests;

use args::Matches;
pub use args::Stop;

/// What the command line asked for.
#[derive(Debug)]
pub enum Command {
    /// Run the daemon.
    Run { config: PathBuf },
    /// Validate a config file.
    CheckConfig { file: PathBuf },
    /// Translate an OpenWrt UCI config into TOML.
    UciToToml { file: PathBuf },
    /// Talk to the running daemon.
    Ctl {
        socket: PathBuf,
        json: bool,
        command: CtlCommand,
    },
    /// A simulated store.
    Demo(crate::sim::demo::DemoArgs),
    /// A reference HQ endpoint for integrators.
    HqReceiver(crate::hq::receiver::ReceiverArgs),
    /// Move a version 0.1 state directory (sled) into this version's format.
    MigrateState { dir: PathBuf },
}

/// `storegate ctl`'s commands (each one control request).
#[derive(Debug)]
pub enum CtlCommand {
    Status,
    Clients,
    Auth {
        mac: String,
    },
    Deauth {
        mac: String,
    },
    Devices,
    Visits,
    Footfall,
    Members,
    MemberErase {
        member_id: String,
    },
    DeadLetters {
        retry: bool,
    },
    DashboardPassword,
    Observe {
        mac: String,
        ip: Option<String>,
        hostname: Option<String>,
    },
    Events {
        limit: usize,
    },
}

/// Reads a command line (without the program's name): the command, or
/// why none runs (help, the version, a mistake) and with what exit code.
pub fn parse(words: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Command, Stop> {
    let top = args::parse(&table::STOREGATE, env!("CARGO_PKG_VERSION"), words)?;
    let Some(m) = top.sub.as_deref() else {
        unreachable!("parsing requires a subcommand")
    };
    let path = |m: &Matches, i: usize| PathBuf::from(m.arg(i));
    let os_path = |m: &Matches, long: &str| m.os(long).map(PathBuf::from);
    Ok(match m.name {
        "run" => Command::Run {
            config: os_path(m, "config").unwrap_or_default(),
        },
        "check-config" => Command::CheckConfig { file: path(m, 0) },
        "uci-to-toml" => Command::UciToToml { file: path(m, 0) },
        "ctl" => {
            let Some(sub) = m.sub.as_deref() else {
                unreachable!("ctl requires a subcommand")
            };
            Command::Ctl {
                socket: os_path(m, "socket").unwrap_or_default(),
                json: m.flag("json") || sub.flag("json"),
                command: ctl_command_of(sub)?,
            }
        }
        "demo" => Command::Demo(crate::sim::demo::DemoArgs {
            speed: m.value("speed")?.unwrap_or_default(),
            seed: m.value("seed")?,
            state: os_path(m, "state"),
            port_base: m.value("port-base")?,
            fresh: m.flag("fresh"),
            date: m.value("date")?,
        }),
        "hq-receiver" => Command::HqReceiver(crate::hq::receiver::ReceiverArgs {
            listen: m.value("listen")?,
            secret: m.value("secret")?,
            tls_cert: os_path(m, "tls-cert"),
            tls_key: os_path(m, "tls-key"),
            client_ca: os_path(m, "client-ca"),
            sync_file: os_path(m, "sync-file"),
        }),
        "migrate-state" => Command::MigrateState { dir: path(m, 0) },
        other => unreachable!("command {other} is in the table but not here"),
    })
}

fn ctl_command_of(m: &Matches) -> Result<CtlCommand, Stop> {
    Ok(match m.name {
        "status" => CtlCommand::Status,
        "clients" => CtlCommand::Clients,
        "auth" => CtlCommand::Auth { mac: m.arg_str(0)? },
        "deauth" => CtlCommand::Deauth { mac: m.arg_str(0)? },
        "devices" => CtlCommand::Devices,
        "visits" => CtlCommand::Visits,
        "footfall" => CtlCommand::Footfall,
        "members" => CtlCommand::Members,
        "member-erase" => CtlCommand::MemberErase {
            member_id: m.arg_str(0)?,
        },
        "dead-letters" => CtlCommand::DeadLetters {
            retry: m.flag("retry"),
        },
        "dashboard-password" => CtlCommand::DashboardPassword,
        "observe" => CtlCommand::Observe {
            mac: m.arg_str(0)?,
            ip: m.value("ip")?,
            hostname: m.value("hostname")?,
        },
        "events" => CtlCommand::Events {
            limit: m.value("limit")?.unwrap_or_default(),
        },
        other => unreachable!("ctl command {other} is in the table but not here"),
    })
}

pub fn main() -> ExitCode {
    let command = match parse(std::env::args_os().skip(1)) {
        Ok(c) => c,
        Err(stop) => return stop.exit(),
    };
    match command {
        Command::Run { config } => run(config),
        Command::CheckConfig { file } => match Config::load(&file)
            .map_err(|e| e.to_string())
            .and_then(|config| check_files(&config))
        {
            Ok(()) => {
                println!("{}: ok", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{}: {e}", file.display());
                ExitCode::from(1)
            }
        },
        Command::UciToToml { file } => uci_to_toml(&file),
        Command::Ctl {
            socket,
            json,
            command,
        } => ctl(&socket, json, command),
        Command::Demo(args) => crate::sim::demo::cli_main(args),
        Command::HqReceiver(args) => crate::hq::receiver::cli_main(args),
        Command::MigrateState { dir } => match crate::store::migrate::from_sled(&dir) {
            Ok(m) => {
                eprintln!(
                    "storegate: migrated {} entries of {} from sled to redb",
                    m.entries,
                    dir.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("storegate: {e}");
                ExitCode::from(1)
            }
        },
    }
}

fn uci_to_toml(file: &std::path::Path) -> ExitCode {
    let result = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read: {e}"))
        .and_then(|text| crate::config::uci::to_toml(&text).map_err(|e| e.to_string()));
    match result {
        Ok(toml_text) => {
            print!("{toml_text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            ExitCode::from(1)
        }
    }
}

/// The files a config names that other parts read at start, checked with
/// those parts' own code (the parsers live there, and `config` depends on
/// none of them), so that `check-config` refuses what would stop `run`
/// and `run` refuses it before it touches the firewall: HQ's CA and client
/// certificate, the dashboard's certificate and key, the device key.
/// Nothing is made or stored. Not checked: `dashboard.password_file`,
/// which is read only while no password is stored, so it may be gone
/// after the first start.
fn check_files(config: &Config) -> Result<(), String> {
    if let Some(hq) = &config.hq
        && (hq.ca_file.is_some() || hq.client_cert.is_some())
    {
        // Errors name `hq.ca_file`, `hq.client_cert` or `hq.client_key`.
        // (Without either there is no file to read: the system's roots
        // are taken as found.)
        crate::uplink::delivery::client_for(hq)?;
    }
    if let Some(pair) = &config.dashboard.tls {
        crate::dashboard::tls::acceptor(Some(pair), &config.storage.path)
            .map_err(|e| format!("dashboard.cert_file, dashboard.key_file: {e}"))?;
    }
    if let Some(path) = &config.privacy.device_key_file {
        // With a file the store is not touched; this one only fills the slot.
        let unused = crate::store::MemoryStore::new();
        crate::privacy::DeviceKey::load(Some(path), &unused).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn run(path: PathBuf) -> ExitCode {
    let refused = |reason: String| {
        eprintln!("storegate: {}", reason.replace('\n', " "));
        ExitCode::from(2)
    };
    let config = match Config::load(&path) {
        Ok(c) => c,
        Err(LoadError::Invalid(e)) => {
            return refused(format!("bad config {}: {e}", path.display()));
        }
        Err(e) => return refused(e.to_string()),
    };
    if let Err(e) = check_files(&config) {
        return refused(format!("bad config {}: {e}", path.display()));
    }
    let runtime = match crate::runtime::start("storegate", "info") {
        Ok(r) => r,
        Err(code) => return code,
    };
    match runtime.block_on(crate::daemon::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("storegate: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn ctl(socket: &std::path::Path, json: bool, command: CtlCommand) -> ExitCode {
    let check_mac = |mac: &str| -> Result<String, ExitCode> {
        match mac.parse::<MacAddr>() {
            Ok(m) => Ok(m.to_string()),
            Err(e) => {
                eprintln!("storegate ctl: {e}");
                Err(ExitCode::from(2))
            }
        }
    };
    let request = match command {
        CtlCommand::Status => Request::Status,
        CtlCommand::Clients => Request::Clients,
        CtlCommand::Auth { mac } => match check_mac(&mac) {
            Ok(mac) => Request::Auth { mac },
            Err(code) => return code,
        },
        CtlCommand::Deauth { mac } => match check_mac(&mac) {
            Ok(mac) => Request::Deauth { mac },
            Err(code) => return code,
        },
        CtlCommand::Devices => Request::Devices,
        CtlCommand::Visits => Request::Visits,
        CtlCommand::Footfall => Request::Footfall,
        CtlCommand::Members => Request::Members,
        CtlCommand::MemberErase { member_id } => Request::MemberErase { member_id },
        CtlCommand::Events { limit } => Request::Events { limit: Some(limit) },
        CtlCommand::DeadLetters { retry } => Request::DeadLetters { retry },
        CtlCommand::Observe { mac, ip, hostname } => match check_mac(&mac) {
            Ok(mac) => Request::Observe { mac, ip, hostname },
            Err(code) => return code,
        },
        CtlCommand::DashboardPassword => match read_password() {
            Ok(password) => Request::DashboardPassword { password },
            Err(code) => return code,
        },
    };
    let reply = match client::call(socket, &request) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("storegate ctl: {e}");
            return ExitCode::from(1);
        }
    };
    if !reply.ok {
        eprintln!(
            "storegate ctl: {}",
            reply.error.unwrap_or_else(|| "failed".into())
        );
        return ExitCode::from(1);
    }
    let data = reply.data.unwrap_or(serde_json::Value::Null);
    if json {
        println!("{data}");
    } else {
        print_human(&request, &data);
    }
    ExitCode::SUCCESS
}

/// The new dashboard password: the first line of stdin.
fn read_password() -> Result<String, ExitCode> {
    let mut line = String::new();
    match std::io::stdin().read_line(&mut line) {
        Ok(_) => {
            let password = line.trim_end_matches(['\r', '\n']).to_string();
            if password.is_empty() {
                eprintln!("storegate ctl: give the new password on stdin");
                return Err(ExitCode::from(2));
            }
            Ok(password)
        }
        Err(e) => {
            eprintln!("storegate ctl: cannot read the password from stdin: {e}");
            Err(ExitCode::from(2))
        }
    }
}

fn print_human(request: &Request, data: &serde_json::Value) {
    let s = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    };
    match request {
        Request::Clients => {
            println!("{:<17}  {:<39}  {:<10}  EXPIRES", "MAC", "IP", "STATE");
            for c in data.as_array().into_iter().flatten() {
                println!(
                    "{:<17}  {:<39}  {:<10}  {}",
                    s(&c["mac"]),
                    s(&c["ip"]),
                    s(&c["state"]),
                    s(&c["expires_at"])
                );
            }
        }
        Request::Auth { .. } => println!(
            "{} authorised until {}",
            s(&data["mac"]),
            s(&data["expires_at"])
        ),
        Request::Deauth { .. } => {
            let was = data["was_authorized"].as_bool().unwrap_or(false);
            println!(
                "{} {}",
                s(&data["mac"]),
                if was {
                    "signed out"
                } else {
                    "was not signed in"
                }
            );
        }
        Request::Events { .. } | Request::DeadLetters { retry: false } => {
            for e in data.as_array().into_iter().flatten() {
                println!(
                    "{:>8}  {}  {:<32}  {}",
                    s(&e["sequence"]),
                    s(&e["time"]),
                    s(&e["type"]),
                    e["data"]
                );
            }
        }
        Request::Members => {
            println!(
                "{:<24}  {:<6}  {:<13}  {:<17}  {:<4}  LAST SEEN",
                "MEMBER", "PHONE", "METHOD", "DEVICES", "WIFI"
            );
            for m in data.as_array().into_iter().flatten() {
                let devices: Vec<String> = m["devices"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(s)
                    .collect();
                let phone = match &m["phone_last4"] {
                    serde_json::Value::String(d) => format!("**{d}"),
                    _ => "-".into(),
                };
                // Whether the member holds a Wi-Fi key; never the key.
                let wifi = if m["has_wifi_key"] == true {
                    "key"
                } else {
                    "-"
                };
                println!(
                    "{:<24}  {:<6}  {:<13}  {:<17}  {:<4}  {}",
                    s(&m["member_id"]),
                    phone,
                    s(&m["method"]),
                    if devices.is_empty() {
                        "-".to_string()
                    } else {
                        devices.join(",")
                    },
                    wifi,
                    s(&m["last_seen"])
                );
            }
        }
        Request::DashboardPassword { .. } => {
            println!("dashboard password changed; every dashboard session was signed out")
        }
        Request::MemberErase { .. } => println!(
            "{} erased: {} remembered devices unbound, {} sessions ended, {} devices scrubbed",
            s(&data["member_id"]),
            s(&data["devices_unbound"]),
            s(&data["sessions_ended"]),
            s(&data["presence_devices_scrubbed"])
        ),
        _ => println!("{}", serde_json::to_string_pretty(data).unwrap_or_default()),
    }
}
