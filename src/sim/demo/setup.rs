//! The demo's state directory and config: where it lives (given, or a
//! private temporary one), the ports, the HQ secret, the dashboard
//! password kept across runs, and the `storegate.toml` the daemon loads,
//! tuned so presence keeps up with the compressed day.

use std::net::Ipv4Addr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use rand::Rng;

use super::feed::{Calendar, LAST_DAY_FILE};
use super::{BROWSER_MAC, DemoArgs, PASSWORD_FILE};
use crate::clock::SimClock;
use crate::config::Config;
use crate::presence::local;
use crate::sim::{Sim, SimConfig};
use crate::time::Timestamp;

/// Where things listen.
#[derive(Debug, Clone, Copy)]
struct Ports {
    portal: u16,
    dashboard: u16,
    hq: u16,
}

/// The given state directory, or a fresh temporary one (true: remove it
/// at exit), in memory when the system has `/dev/shm`.
pub(super) fn state_dir(given: Option<&Path>) -> anyhow::Result<(PathBuf, bool)> {
    match given {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("--state: cannot create {}", dir.display()))?;
            let dir = dir
                .canonicalize()
                .with_context(|| format!("--state: {}", dir.display()))?;
            Ok((dir, false))
        }
        None => {
            // In memory where there is a tmpfs for it: the state is thrown
            // away at exit, and history's many small durable writes cost
            // nothing there (on a disk they take seconds).
            let shm = Path::new("/dev/shm");
            let base = if shm.is_dir() {
                shm.to_path_buf()
            } else {
                std::env::temp_dir()
            };
            let dir = base.join(format!(
                "storegate-demo-{}-{:08x}",
                std::process::id(),
                rand::thread_rng().r#gen::<u32>()
            ));
            // Private from the start: it holds the HQ secret and the
            // dashboard's password and key.
            std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
                .create(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            Ok((dir, true))
        }
    }
}

/// Writes `bytes` to a file only its owner can read (created so, not
/// chmodded afterwards; an existing file is truncated and tightened).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)
}

/// Everything the demo needs to run.
pub(super) struct Prepared {
    pub(super) config: Config,
    pub(super) sim: Sim,
    pub(super) hq_listener: std::net::TcpListener,
    pub(super) secret: String,
    /// Paused an hour before the first day opens; the feed moves it.
    pub(super) clock: SimClock,
    pub(super) calendar: Calendar,
    /// The live day's speed.
    pub(super) speed: f64,
}

/// Past days the demo plays before today (`--fresh`: none).
pub const HISTORY_DAYS: u64 = 35;

/// Ports, the simulator, the HQ secret, the config file.
pub(super) fn prepare(
    args: &DemoArgs,
    today: Option<jiff::civil::Date>,
    state: &Path,
) -> anyhow::Result<Prepared> {
    let bind = |port: u16| {
        std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))
    };
    // The HQ listener is kept; the portal's and dashboard's are only
    // probed for a free port (the daemon binds them itself).
    let (ports, hq_listener) = match args.port_base {
        Some(p) => {
            let hq = bind(p + 2)?;
            (
                Ports {
                    portal: bind(p)?.local_addr()?.port(),
                    dashboard: bind(p + 1)?.local_addr()?.port(),
                    hq: p + 2,
                },
                hq,
            )
        }
        None => {
            let hq = bind(0)?;
            let (portal, dashboard) = (bind(0)?, bind(0)?);
            (
                Ports {
                    portal: portal.local_addr()?.port(),
                    dashboard: dashboard.local_addr()?.port(),
                    hq: hq.local_addr()?.port(),
                },
                hq,
            )
        }
    };
    let seed = args.seed.unwrap_or_else(|| rand::thread_rng().r#gen());
    // The simulator runs on the simulated clock's seconds (speed 1
    // here); phones chatter every two simulated minutes.
    let sim = Sim::new(SimConfig {
        seed,
        speed: 1.0,
        arp_every: Duration::from_secs(120),
        browser: Some((BROWSER_MAC, Ipv4Addr::LOCALHOST)),
        ..SimConfig::default()
    });
    let secret = {
        let key: [u8; 32] = rand::thread_rng().r#gen();
        format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(key)
        )
    };
    dashboard_password(state)?;
    let path = state.join("storegate.toml");
    write_private(&path, config_text(state, ports, &secret, &sim).as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    let config = Config::load(&path)
        .map_err(|e| anyhow::anyhow!("the demo's config {}: {e}", path.display()))?;
    let calendar = calendar(state, &config, today, args.fresh);
    // Members' phones are enrolled an hour before the first opening.
    let clock = SimClock::new(Timestamp(calendar.opening(0).millis() - 3_600_000), 0.0);
    Ok(Prepared {
        config,
        sim,
        hq_listener,
        secret,
        clock,
        calendar,
        speed: args.speed,
    })
}

/// Which days the demo plays: five weeks of history then today (`--date`,
/// else the wall clock's date in the store's zone); `--fresh`, today
/// alone; on a `--state` where a demo ran before, the day after its last
/// one, alone.
fn calendar(
    state: &Path,
    config: &Config,
    today: Option<jiff::civil::Date>,
    fresh: bool,
) -> Calendar {
    let tz = config.store.timezone.clone();
    let last = std::fs::read_to_string(state.join(LAST_DAY_FILE))
        .ok()
        .and_then(|s| s.trim().parse::<jiff::civil::Date>().ok());
    if let Some(last) = last.and_then(|d| d.tomorrow().ok()) {
        return Calendar {
            tz,
            first_day: last,
            history_days: 0,
        };
    }
    let today = today.unwrap_or_else(|| local::local_date(Timestamp::now(), &tz));
    let history_days = if fresh { 0 } else { HISTORY_DAYS };
    Calendar {
        first_day: local::days_before(today, history_days as i64),
        tz,
        history_days,
    }
}

/// The manager password: kept in the state directory, so a demo run again
/// on the same `--state` keeps the one the dashboard stored first.
fn dashboard_password(state: &Path) -> anyhow::Result<String> {
    let path = state.join(PASSWORD_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let p = text.trim_end_matches(['\r', '\n']);
        if !p.is_empty() {
            return Ok(p.to_string());
        }
    }
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut rng = rand::thread_rng();
    let password: String = (0..16)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect();
    write_private(&path, format!("{password}\n").as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(password)
}

/// A TOML string (quoted and escaped).
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The daemon's config, its times on the simulated clock. Present
/// phones ARP every two minutes and the capture cannot probe, so a phone
/// silent for six minutes is gone; sessions idle for two hours end (the
/// demo's firewall sees no traffic). The simulated members sign in by
/// member number, so the demo trusts member numbers (a real store's
/// default does not) and takes a day's sign-ins in a minute. A sign-in
/// code lasts the longest a store may set, an hour of the store's time,
/// so a person can type it at speed.
fn config_text(state: &Path, ports: Ports, secret: &str, sim: &Sim) -> String {
    let staff: Vec<String> = sim
        .staff_macs()
        .iter()
        .map(|m| quoted(&m.to_string()))
        .collect();
    let path = |name: &str| quoted(&state.join(name).display().to_string());
    format!(
        "# Written by `storegate demo`: a simulated store on loopback.\n\
         [store]\nid = \"demo\"\nname = \"Demo Store (simulated)\"\n\n\
         [lan]\ninterface = \"lo\"\n\n\
         [portal]\nlisten = \"127.0.0.1:{portal}\"\nidle_timeout = \"2h\"\n\n\
         [firewall]\nbackend = \"none\"\n\n\
         [presence]\nprobe_after = \"3m\"\nleave_after = \"6m\"\nrejoin_gap = \"5m\"\n\
         summary_interval = \"60s\"\nstaff_devices = [{staff}]\n\n\
         [members]\nmember_number_trusted = true\nmember_number_per_hour = 10000\notp_ttl = \"1h\"\n\n\
         [storage]\npath = {db}\n\n\
         [hq]\nurl = \"http://127.0.0.1:{hq}/storegate\"\nsecret = \"{secret}\"\n\n\
         [dashboard]\nlisten = \"127.0.0.1:{dashboard}\"\npassword_file = {password}\n\n\
         [control]\nsocket = {socket}\n",
        portal = ports.portal,
        hq = ports.hq,
        dashboard = ports.dashboard,
        staff = staff.join(", "),
        db = path("db"),
        password = path(PASSWORD_FILE),
        socket = path("control.sock"),
    )
}
