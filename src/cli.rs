//! The command line (contract in DESIGN.md). `main` only calls `cli::main`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, LoadError};
use crate::control::{Request, client};
use crate::mac::MacAddr;

#[derive(Debug, Parser)]
#[command(
    name = "storegate",
    version,
    about = "Captive portal and presence for store routers"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon.
    Run {
        /// The config file.
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Validate a config file: exit 0 if valid, else 1 with the key at fault.
    CheckConfig { file: PathBuf },
    /// Translate an OpenWrt UCI config (/etc/config/storegate) into TOML on
    /// stdout, validated; exit 1 naming the UCI section and option at fault.
    UciToToml { file: PathBuf },
    /// Talk to the running daemon.
    Ctl {
        /// The daemon's control socket.
        #[arg(short, long, default_value = "/run/storegate/control.sock")]
        socket: PathBuf,
        /// Print one JSON document instead of a table.
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        command: CtlCommand,
    },
    /// A simulated store with no root and no router: the real daemon on
    /// loopback fed by synthetic shoppers, with an in-process HQ receiver.
    /// Prints the portal, dashboard and HQ URLs; Ctrl-C stops it.
    Demo {
        /// Simulated seconds per real second (1 to 10000): at 300 a
        /// 12-hour store day lasts 144 s. The daemon runs on the simulated
        /// clock: dwell, arrivals per hour and every time it shows are the
        /// store's.
        #[arg(long, default_value_t = 120.0)]
        speed: f64,
        /// Seed of the simulation (random if not given).
        #[arg(long)]
        seed: Option<u64>,
        /// Keep the state (config, database, HQ events) here; without it
        /// a temporary directory removed at exit.
        #[arg(long, value_name = "DIR")]
        state: Option<PathBuf>,
        /// Listen on this port (portal), +1 (dashboard) and +2 (HQ
        /// receiver), on 127.0.0.1; without it, free ports.
        #[arg(long, value_name = "P")]
        port_base: Option<u16>,
        /// Open on today with no past (by default five weeks of history
        /// are played first, in a few seconds).
        #[arg(long)]
        fresh: bool,
        /// The simulated today, YYYY-MM-DD (default: the real date in the
        /// store's time zone).
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: Option<String>,
    },
    /// A reference HQ endpoint for integrators: verifies signatures,
    /// de-duplicates by event id, prints accepted events as JSON lines.
    HqReceiver(crate::hq::receiver::ReceiverArgs),
    /// Move a version 0.1 state directory (sled) into this version's
    /// format. `run` does this by itself on its first start.
    #[command(hide = true)]
    MigrateState { dir: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// The daemon's state and counters.
    Status,
    /// Known clients, authorised and not.
    Clients,
    /// Authorise a client by MAC.
    Auth { mac: String },
    /// End a client's session by MAC.
    Deauth { mac: String },
    /// Devices seen on the LAN.
    Devices,
    /// Visits (open ones first).
    Visits,
    /// Footfall: present now, arrivals per hour, dwell, new vs returning.
    Footfall,
    /// Members.
    Members,
    /// Erase a member's data from the box.
    MemberErase { member_id: String },
    /// Events HQ refused (parked); with --retry, queue them again.
    DeadLetters {
        #[arg(long)]
        retry: bool,
    },
    /// Set the dashboard's manager password, read from stdin (one line).
    DashboardPassword,
    /// Record a DHCP request from a device by hand, as if captured (tests,
    /// boxes without capture).
    Observe {
        mac: String,
        #[arg(long)]
        ip: Option<String>,
        #[arg(long)]
        hostname: Option<String>,
    },
    /// The newest events waiting for HQ.
    Events {
        /// How many (newest first kept, printed oldest first).
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
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
        Command::Demo {
            speed,
            seed,
            state,
            port_base,
            fresh,
            date,
        } => crate::sim::demo::cli_main(crate::sim::demo::DemoArgs {
            speed,
            seed,
            state,
            port_base,
            fresh,
            date,
        }),
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
