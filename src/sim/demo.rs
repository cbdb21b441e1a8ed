//! `storegate demo`: the real daemon on loopback, fed by the simulated
//! store, delivering to an in-process reference HQ receiver. No root, no
//! router, no nftables, no capture: the firewall backend is `none` (which
//! never opens a capture socket), and sightings come from [`Sim`].
//!
//! It writes a config to the state directory (a fresh temporary one,
//! removed at exit, unless `--state DIR` is given), starts the receiver
//! (plain HTTP on 127.0.0.1; accepted events go to `hq-events.jsonl` in the
//! state directory), then runs `daemon::run_with` with two hooks: a
//! resolver that maps loopback to the browser's simulated phone (so a
//! person can sign in at the printed portal URL) and a task that binds
//! the members' remembered phones through the real `Members` API, prints
//! where everything is, and feeds the simulator's sightings and sign-ins
//! to the daemon until Ctrl-C.
//!
//! Ports: `--port-base P` uses P (portal), P+1 (dashboard), P+2 (HQ);
//! without it, free ports on 127.0.0.1.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine;
use rand::Rng;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Action, DAY_SECS, SignIn, Sim, SimConfig};
use crate::access::AuthMethod;
use crate::config::Config;
use crate::daemon::{self, Handles, Hooks};
use crate::hq::receiver::{self, Receiver};
use crate::mac::MacAddr;
use crate::members::Consent;
use crate::portal::{ClientResolver, SyntheticResolver};
use crate::time::Timestamp;
use crate::uplink::signing::{self, SigningKey};

/// The phone a person's browser stands for (locally administered).
pub const BROWSER_MAC: MacAddr = MacAddr([0x02, 0xde, 0x40, 0x00, 0x00, 0x01]);
/// How often the simulator is stepped.
const STEP: Duration = Duration::from_millis(200);
pub const MAX_SPEED: f64 = 10_000.0;
/// Where accepted HQ events go, in the state directory.
pub const HQ_EVENTS_FILE: &str = "hq-events.jsonl";
const PASSWORD_FILE: &str = "dashboard-password";

#[derive(Debug, Clone)]
pub struct DemoArgs {
    /// Simulated seconds per real second.
    pub speed: f64,
    pub seed: Option<u64>,
    pub state: Option<PathBuf>,
    pub port_base: Option<u16>,
}

/// Maps loopback (the person's browser) to [`BROWSER_MAC`]; any other
/// address as the `none` backend does.
pub struct DemoResolver {
    pub browser: MacAddr,
}

impl ClientResolver for DemoResolver {
    fn mac_of(&self, ip: IpAddr) -> Option<MacAddr> {
        if ip.to_canonical().is_loopback() {
            Some(self.browser)
        } else {
            SyntheticResolver.mac_of(ip)
        }
    }
}

/// Where things listen.
#[derive(Debug, Clone, Copy)]
struct Ports {
    portal: u16,
    dashboard: u16,
    hq: u16,
}

/// `storegate demo`: exit 0 after Ctrl-C (SIGINT) or SIGTERM, 2 on bad
/// arguments, 1 if it cannot start.
pub fn cli_main(args: DemoArgs) -> ExitCode {
    if !(args.speed.is_finite() && (1.0..=MAX_SPEED).contains(&args.speed)) {
        eprintln!(
            "storegate demo: --speed must be from 1 to {MAX_SPEED} (simulated seconds per real second)"
        );
        return ExitCode::from(2);
    }
    if args.port_base.is_some_and(|p| p == 0 || p > u16::MAX - 2) {
        eprintln!(
            "storegate demo: --port-base must be from 1 to {}",
            u16::MAX - 2
        );
        return ExitCode::from(2);
    }
    let (state, ephemeral) = match state_dir(args.state.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("storegate demo: {e:#}");
            return ExitCode::from(1);
        }
    };
    let code = match prepare(&args, &state) {
        Ok((config, sim, hq_listener, secret)) => run(config, sim, hq_listener, secret, &state),
        Err(e) => {
            eprintln!("storegate demo: {e:#}");
            ExitCode::from(1)
        }
    };
    if ephemeral {
        let _ = std::fs::remove_dir_all(&state);
    }
    code
}

/// The given state directory, or a fresh temporary one (true: remove it
/// at exit).
fn state_dir(given: Option<&Path>) -> anyhow::Result<(PathBuf, bool)> {
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

type Prepared = (Config, Sim, std::net::TcpListener, String);

/// Ports, the simulator, the HQ secret, the config file.
fn prepare(args: &DemoArgs, state: &Path) -> anyhow::Result<Prepared> {
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
/// minutes (at least 2 real minutes).
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

/// Counts the receiver's output lines as it writes them to the file.
struct CountingFile {
    file: std::fs::File,
    lines: Arc<AtomicU64>,
}

impl Write for CountingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        let lines = buf[..n].iter().filter(|b| **b == b'\n').count();
        self.lines.fetch_add(lines as u64, Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

fn run(
    config: Config,
    sim: Sim,
    hq_listener: std::net::TcpListener,
    secret: String,
    state: &Path,
) -> ExitCode {
    let runtime = match crate::cli::start("storegate demo", "warn") {
        Ok(r) => r,
        Err(code) => return code,
    };
    match runtime.block_on(run_async(config, sim, hq_listener, secret, state)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("storegate demo: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run_async(
    config: Config,
    sim: Sim,
    hq_listener: std::net::TcpListener,
    secret: String,
    state: &Path,
) -> anyhow::Result<()> {
    hq_listener
        .set_nonblocking(true)
        .context("the HQ receiver's socket")?;
    let hq_addr = hq_listener
        .local_addr()
        .context("the HQ receiver's socket")?;
    let hq_listener =
        tokio::net::TcpListener::from_std(hq_listener).context("the HQ receiver's socket")?;
    let events_path = state.join(HQ_EVENTS_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&events_path)
        .with_context(|| format!("cannot open {}", events_path.display()))?;
    let received = Arc::new(AtomicU64::new(0));
    let key = SigningKey::from_secret(&secret).map_err(|e| anyhow::anyhow!("{e}"))?;
    let receiver = Arc::new(Receiver::new(
        key,
        signing::DEFAULT_TOLERANCE_SECS,
        100_000,
        Box::new(CountingFile {
            file,
            lines: received.clone(),
        }),
    ));
    let hq_stop = CancellationToken::new();
    let hq_tasks = TaskTracker::new();
    let hq_server = tokio::spawn(receiver::serve(
        hq_listener,
        receiver,
        hq_stop.clone(),
        hq_tasks.clone(),
    ));

    let banner = Banner {
        hq_url: format!("http://{hq_addr}/storegate"),
        events_path,
        dashboard: config.dashboard.listen,
        password_path: state.join(PASSWORD_FILE),
        state: state.to_path_buf(),
        control: config.control.socket.clone(),
        seed: sim.config().seed,
        speed: sim.config().speed,
    };
    let hooks = Hooks {
        resolver: Some(Arc::new(DemoResolver {
            browser: BROWSER_MAC,
        })),
        on_ready: Some(Box::new(move |handles| {
            Box::pin(simulate(handles, sim, banner))
        })),
    };
    let result = daemon::run_with(config, hooks).await;

    // The daemon has delivered what it could; now the receiver stops.
    hq_stop.cancel();
    let _ = hq_server.await;
    hq_tasks.close();
    let _ = tokio::time::timeout(Duration::from_secs(6), hq_tasks.wait()).await;
    println!(
        "storegate demo: stopped; HQ received {} events",
        received.load(Ordering::Relaxed)
    );
    result
}

/// What the demo prints once the daemon is ready.
struct Banner {
    hq_url: String,
    events_path: PathBuf,
    dashboard: SocketAddr,
    password_path: PathBuf,
    state: PathBuf,
    control: PathBuf,
    seed: u64,
    speed: f64,
}

impl Banner {
    async fn print(&self, portal_url: &str) {
        let day = Duration::from_secs_f64(DAY_SECS as f64 / self.speed);
        let mut text = format!(
            "storegate demo: a simulated store (seed {}, speed {}x: a 12-hour day lasts {:.0} s)\n\
             portal:    {portal_url}   (open it: your browser is one of the phones)\n",
            self.seed,
            self.speed,
            day.as_secs_f64(),
        );
        // The dashboard is its own part of the daemon: show it only when
        // it is really there.
        if listening(self.dashboard).await {
            let password = std::fs::read_to_string(&self.password_path).unwrap_or_default();
            text.push_str(&format!(
                "dashboard: https://{}/   (self-signed certificate)\n\
                 password:  {}\n",
                self.dashboard,
                password.trim_end()
            ));
        } else {
            text.push_str("dashboard: not available in this build\n");
        }
        text.push_str(&format!(
            "hq:        {}   (accepted events in {})\n\
             state:     {}\n\
             control:   storegate ctl -s {} status\n\
             Stop with Ctrl-C.\n",
            self.hq_url,
            self.events_path.display(),
            self.state.display(),
            self.control.display(),
        ));
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

/// Whether something accepts connections at `addr` (a few tries: the
/// server may start just after the daemon says it is ready).
async fn listening(addr: SocketAddr) -> bool {
    for _ in 0..10 {
        let connect = tokio::net::TcpStream::connect(addr);
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(200), connect).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// The on-ready task: members first, then the banner, then the store.
async fn simulate(h: Handles, mut sim: Sim, banner: Banner) {
    enroll_members(&h, &sim).await;
    banner.print(&h.portal_url).await;
    let start = Instant::now();
    let mut tick = tokio::time::interval(STEP);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut events = Vec::new();
    let mut last_hour = None;
    loop {
        tokio::select! {
            _ = h.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let elapsed = start.elapsed();
        let mut sign_ins = Vec::new();
        for action in sim.step(elapsed) {
            match action {
                Action::Sight(s) => h.presence.observe(&s, &mut events),
                Action::SignIn { mac, ip, how } => sign_ins.push((mac, ip, how)),
            }
        }
        h.presence.store_events(&mut events);
        if !sign_ins.is_empty() {
            let h2 = h.clone();
            let _ = tokio::task::spawn_blocking(move || {
                for (mac, ip, how) in sign_ins {
                    sign_in(&h2, mac, ip, how);
                }
            })
            .await;
        }
        let (day, clock) = sim.clock(elapsed);
        let hour = (day, clock[..2].to_string());
        if last_hour.as_ref() != Some(&hour) {
            last_hour = Some(hour);
            let staff = sim.present().filter(|d| d.staff).count();
            let shoppers = sim
                .present()
                .filter(|d| !d.staff && d.mac != BROWSER_MAC)
                .count();
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "[day {} {clock}] {shoppers} shoppers and {staff} staff in the store",
                day + 1,
            );
            let _ = out.flush();
        }
    }
}

/// Binds the remembered members' phones through the real sign-in path
/// (member number, then "remember this device"), so they are signed in
/// by their DHCP packet when they come.
async fn enroll_members(h: &Handles, sim: &Sim) {
    let members: Vec<(String, MacAddr, bool)> = sim
        .members()
        .iter()
        .enumerate()
        .filter(|(_, m)| m.remembered)
        .map(|(i, m)| (m.number.clone(), sim.devices()[m.device].mac, i % 2 == 0))
        .collect();
    let m = h.members.clone();
    let result = tokio::task::spawn_blocking(move || {
        let now = Timestamp::now();
        let mut failed = 0;
        for (number, mac, marketing) in &members {
            let linked = m.verify_member_number(number, *mac, now).and_then(|id| {
                m.link(
                    &id,
                    *mac,
                    Consent {
                        remember_device: true,
                        marketing: *marketing,
                    },
                    None,
                    now,
                )
            });
            if let Err(e) = linked {
                failed += 1;
                tracing::warn!(%mac, "demo: could not enrol a member: {e}");
            }
        }
        (members.len(), failed)
    })
    .await;
    if let Ok((n, failed)) = result {
        tracing::info!(members = n, failed, "demo: members' phones remembered");
    }
}

/// A shopper signs in on the portal: the same calls as the portal's
/// click-through and member-number routes.
fn sign_in(h: &Handles, mac: MacAddr, ip: IpAddr, how: SignIn) {
    let result = match how {
        SignIn::ClickThrough => h
            .gate
            .authorize(mac, Some(ip), AuthMethod::ClickThrough, None)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        SignIn::MemberNumber { number, remember } => {
            let now = Timestamp::now();
            h.members
                .verify_member_number(&number, mac, now)
                .and_then(|id| {
                    h.members
                        .link(
                            &id,
                            mac,
                            Consent {
                                remember_device: remember,
                                marketing: false,
                            },
                            None,
                            now,
                        )
                        .map(|_| id)
                })
                .map_err(|e| e.to_string())
                .and_then(|id| {
                    h.gate
                        .authorize(mac, Some(ip), AuthMethod::MemberNumber, Some(id))
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                })
        }
    };
    if let Err(e) = result {
        tracing::debug!(%mac, "demo: a simulated sign-in failed: {e}");
    }
}
