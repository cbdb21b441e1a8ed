//! The demo's state directory and config: where it lives (given, or a
//! private temporary one), the ports, the HQ secret, the dashboard
//! password kept across runs, and the `storegate.toml` the daemon loads,
//! tuned so presence keeps up with the compressed day.

use std::net::Ipv4Addr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine;
use rand::Rng;

use super::{BROWSER_MAC, DemoArgs, PASSWORD_FILE};
use crate::config::Config;
use crate::sim::{Sim, SimConfig};

/// Where things listen.
#[derive(Debug, Clone, Copy)]
struct Ports {
    portal: u16,
    dashboard: u16,
    hq: u16,
}

/// The given state directory, or a fresh temporary one (true: remove it
/// at exit).
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
            let dir = std::env::temp_dir().join(format!(
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

pub(super) type Prepared = (Config, Sim, std::net::TcpListener, String);

/// Ports, the simulator, the HQ secret, the config file.
pub(super) fn prepare(args: &DemoArgs, state: &Path) -> anyhow::Result<Prepared> {
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
    let sim = Sim::new(SimConfig {
        seed,
        speed: args.speed,
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
    Ok((config, sim, hq_listener, secret))
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

/// The daemon's config. Presence timers are short so that leaving is
/// noticed at the compressed pace (present phones ARP every 3 s; a silent
/// one is gone after 8 s); idle sessions end after 30 simulated
/// minutes (at least 2 real minutes). The simulated members sign in by
/// member number, so the demo trusts member numbers (a real store's
/// default does not) and takes a simulated day's sign-ins in minutes.
fn config_text(state: &Path, ports: Ports, secret: &str, sim: &Sim) -> String {
    let idle = (1800.0 / sim.config().speed).max(120.0) as u64;
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
         [portal]\nlisten = \"127.0.0.1:{portal}\"\nidle_timeout = \"{idle}s\"\n\n\
         [firewall]\nbackend = \"none\"\n\n\
         [presence]\nprobe_after = \"5s\"\nleave_after = \"8s\"\nrejoin_gap = \"5s\"\n\
         summary_interval = \"60s\"\nstaff_devices = [{staff}]\n\n\
         [members]\nmember_number_trusted = true\nmember_number_per_hour = 10000\n\n\
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
