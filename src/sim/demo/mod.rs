//! `storegate demo`: the real daemon on loopback, fed by the simulated
//! store, delivering to an in-process reference HQ receiver. No root, no
//! router, no nftables, no capture: the firewall backend is `none` (which
//! never opens a capture socket), and sightings come from [`Sim`].
//!
//! It writes a config to the state directory (a fresh temporary one,
//! in memory where `/dev/shm` exists, removed at exit, unless `--state
//! DIR` is given), starts the receiver (plain HTTP on 127.0.0.1; accepted
//! events go to `hq-events.jsonl` in the state directory; members'
//! arrivals become targeted messages, `hq`), then runs `daemon::run_with`
//! with three hooks: the simulated clock (`crate::clock::SimClock`: the
//! daemon's business time is the store's), a resolver that maps loopback
//! to the browser's simulated phone (so a person can sign in at the
//! printed portal URL) and a task that binds the members' remembered
//! phones through the real `Members` API, plays five weeks of history
//! (`--fresh`: none), prints where everything is and a short tour, and
//! feeds the simulator's sightings and sign-ins to the daemon until
//! Ctrl-C.
//!
//! Ports: `--port-base P` uses P (portal), P+1 (dashboard), P+2 (HQ);
//! without it, free ports on 127.0.0.1.
//!
//! Files: `setup` (state directory, ports, config), `banner` (what is
//! printed once ready), `feed` (the on-ready task that drives the daemon),
//! `hq` (the in-process HQ's targeted messages and their page, on the
//! receiver's port); this one holds the entry point, the receiver and the
//! hooks.

mod banner;
mod feed;
pub mod hq;
mod setup;

use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::daemon::{self, Hooks};
use crate::hq::receiver::Receiver;
use crate::mac::MacAddr;
use crate::portal::{ClientResolver, SyntheticResolver};
use crate::uplink::signing::{self, SigningKey};

use banner::Banner;
use setup::{Prepared, prepare, state_dir};

/// The phone a person's browser stands for (locally administered).
pub const BROWSER_MAC: MacAddr = MacAddr([0x02, 0xde, 0x40, 0x00, 0x00, 0x01]);
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
    /// No history: the store opens today with no past.
    pub fresh: bool,
    /// The simulated today (`YYYY-MM-DD`); `None`: the real date.
    pub date: Option<String>,
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
    let today = match args.date.as_deref().map(str::parse::<jiff::civil::Date>) {
        None => None,
        Some(Ok(d)) => Some(d),
        Some(Err(_)) => {
            eprintln!("storegate demo: --date must be a date of the form YYYY-MM-DD");
            return ExitCode::from(2);
        }
    };
    let (state, ephemeral) = match state_dir(args.state.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("storegate demo: {e:#}");
            return ExitCode::from(1);
        }
    };
    let code = match prepare(&args, today, &state) {
        Ok(prepared) => run(prepared, &state),
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

/// Counts the receiver's output lines as it writes them to the file, and
/// shows the texts HQ was asked to send (sign-in codes) on the terminal:
/// in the demo, the terminal is the shopper's phone.
struct CountingFile {
    file: std::fs::File,
    lines: Arc<AtomicU64>,
}

impl Write for CountingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        let lines = buf[..n].iter().filter(|b| **b == b'\n').count();
        self.lines.fetch_add(lines as u64, Ordering::Relaxed);
        // The receiver writes a text as one whole line.
        if buf.starts_with(br#"{"message""#)
            && let Ok(line) = serde_json::from_slice::<serde_json::Value>(&buf[..n])
        {
            print_text(&line["message"]);
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// One text HQ was asked to send, as the phone would show it.
fn print_text(message: &serde_json::Value) {
    let phone = message["phone"].as_str().unwrap_or("?");
    let text = match (message["kind"].as_str(), message["code"].as_str()) {
        (Some("otp"), Some(code)) => format!("your sign-in code is {code}"),
        _ => message["text"].as_str().unwrap_or("(a text)").to_string(),
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "[hq] text to {phone}: {text}");
    let _ = out.flush();
}

fn run(prepared: Prepared, state: &Path) -> ExitCode {
    let runtime = match crate::runtime::start("storegate demo", "warn") {
        Ok(r) => r,
        Err(code) => return code,
    };
    match runtime.block_on(run_async(prepared, state)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("storegate demo: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run_async(prepared: Prepared, state: &Path) -> anyhow::Result<()> {
    let Prepared {
        config,
        sim,
        hq_listener,
        secret,
        clock,
        calendar,
        speed,
    } = prepared;
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
    // Targeted messages, aged against the business clock; while history
    // plays, HQ's present is already today's opening (HQ stands in the
    // present: arrivals of past days are too old to message).
    let targeting = {
        let (c, today) = (clock.clone(), calendar.opening(calendar.history_days));
        hq::DemoHq::new(
            hq::campaigns(),
            config.store.timezone.clone(),
            Arc::new(move || c.now().max(today)),
        )
    };
    let receiver = Arc::new(
        Receiver::new(
            key,
            signing::DEFAULT_TOLERANCE_SECS,
            100_000,
            Box::new(CountingFile {
                file,
                lines: received.clone(),
            }),
        )
        .with_observer(targeting.observer()),
    );
    let hq_stop = CancellationToken::new();
    let hq_tasks = TaskTracker::new();
    let hq_server = tokio::spawn(hq::serve(
        hq_listener,
        receiver,
        targeting,
        hq_stop.clone(),
        hq_tasks.clone(),
    ));

    let banner = Banner {
        hq_url: format!("http://{hq_addr}/storegate"),
        hq_page: format!("http://{hq_addr}/"),
        events_path,
        dashboard: config.dashboard.listen,
        password_path: state.join(PASSWORD_FILE),
        state: state.to_path_buf(),
        control: config.control.socket.clone(),
        seed: sim.config().seed,
        speed,
    };
    let hooks = Hooks {
        resolver: Some(Arc::new(DemoResolver {
            browser: BROWSER_MAC,
        })),
        clock: Some(clock.clock()),
        on_ready: Some(Box::new(move |handles| {
            Box::pin(feed::simulate(handles, sim, banner, clock, calendar))
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
