//! The gateway namespace's services: dnsmasq (DHCP with the captive-portal
//! option 114, DNS) and the storegate daemon under test, with the config
//! the lab writes for it and the process handle ([`Storegate`]) to wait
//! on, signal and read the log of.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::diag::{Diag, diagnostics};
use super::lab::{CAPTIVE_API_URL, INET_NAME, INET_V4, Lab, PORTAL_PORT};
use super::process::{send_signal, storegate_bin};
use crate::fail;

const READY_TIMEOUT: Duration = Duration::from_secs(10);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Overrides for the storegate config the lab writes; `None` leaves the
/// daemon's default.
#[derive(Clone, Debug, Default)]
pub struct GateConfig {
    pub session_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub walled_garden: Option<Vec<String>>,
    /// `portal.max_connections`.
    pub portal_max_connections: Option<u32>,
    /// Appended verbatim at the end (new sections only: a table that the
    /// base config already has cannot be opened twice in TOML).
    pub extra: String,
}

impl GateConfig {
    /// The default config but for the portal's session timeout (`"3s"`).
    pub fn session(timeout: &str) -> GateConfig {
        GateConfig {
            session_timeout: Some(timeout.into()),
            ..GateConfig::default()
        }
    }

    /// The default config but for the portal's idle timeout (`"3s"`).
    pub fn idle(timeout: &str) -> GateConfig {
        GateConfig {
            idle_timeout: Some(timeout.into()),
            ..GateConfig::default()
        }
    }
}

/// A lab with storegate running on `cfg` and ready.
pub fn gate_lab(tag: &str, cfg: GateConfig) -> Option<(Lab, Storegate)> {
    let lab = Lab::new(tag)?;
    let gate = lab.start_storegate_ready(&cfg);
    Some((lab, gate))
}

/// `s` as a TOML basic string.
pub(super) fn toml_str(s: &str) -> String {
    serde_json::to_string(s).expect("a JSON string is a TOML basic string")
}

impl Lab {
    /// Starts dnsmasq on br-lan; it logs "DHCP, IP range" once it serves.
    pub(super) fn spawn_dnsmasq(&self) -> Child {
        let dir = self.path.display().to_string();
        let dnsmasq_args = [
            "--keep-in-foreground".to_string(),
            "--conf-file=/dev/null".to_string(),
            "--no-resolv".to_string(),
            "--no-hosts".to_string(),
            "--interface=br-lan".to_string(),
            "--bind-interfaces".to_string(),
            "--user=root".to_string(),
            "--group=root".to_string(),
            "--dhcp-authoritative".to_string(),
            // dnsmasq pings an address before offering it and handles
            // nothing else meanwhile (3 s a lease); the lab's LAN is ours.
            "--no-ping".to_string(),
            "--dhcp-range=192.0.2.100,192.0.2.199,1h".to_string(),
            format!("--dhcp-leasefile={dir}/dnsmasq.leases"),
            format!("--pid-file={dir}/dnsmasq.pid"),
            format!("--address=/{INET_NAME}/{INET_V4}"),
            // Not quoted: dnsmasq would keep the quotes in a numbered option.
            format!("--dhcp-option=114,{CAPTIVE_API_URL}"),
            format!("--log-facility={dir}/dnsmasq.log"),
            "--log-queries".to_string(),
        ];
        let args: Vec<&str> = dnsmasq_args.iter().map(String::as_str).collect();
        self.spawn_in(&self.gw, "dnsmasq", &args, "dnsmasq.out")
    }

    pub(super) fn dnsmasq_ready(&self) -> bool {
        fs::read_to_string(self.path.join("dnsmasq.log"))
            .map(|s| s.contains("DHCP, IP range"))
            .unwrap_or(false)
    }

    /// dnsmasq's lease file (`expiry mac ip hostname client-id` lines).
    pub fn dnsmasq_leases(&self) -> String {
        fs::read_to_string(self.path.join("dnsmasq.leases")).unwrap_or_default()
    }

    /// `nft list ruleset` in the gateway.
    pub fn nft_ruleset(&self) -> String {
        String::from_utf8_lossy(&self.exec(&self.gw, "nft", &["list", "ruleset"]).stdout)
            .into_owned()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.path.join("state")
    }

    pub fn control_socket(&self) -> PathBuf {
        self.path.join("control.sock")
    }

    /// The config the lab runs storegate with.
    pub fn gate_config_toml(&self, cfg: &GateConfig) -> String {
        let mut s = format!(
            "[store]\nid = \"lab-{tag}\"\nname = \"Lab\"\ntimezone = \"Asia/Shanghai\"\n\n\
             [lan]\ninterface = \"br-lan\"\n\n\
             [portal]\nlisten = \"0.0.0.0:{PORTAL_PORT}\"\n",
            tag = self.tag.to_lowercase()
        );
        if let Some(t) = &cfg.session_timeout {
            s.push_str(&format!("session_timeout = {}\n", toml_str(t)));
        }
        if let Some(t) = &cfg.idle_timeout {
            s.push_str(&format!("idle_timeout = {}\n", toml_str(t)));
        }
        if let Some(n) = cfg.portal_max_connections {
            s.push_str(&format!("max_connections = {n}\n"));
        }
        if let Some(list) = &cfg.walled_garden {
            let items: Vec<String> = list.iter().map(|x| toml_str(x)).collect();
            s.push_str(&format!("walled_garden = [{}]\n", items.join(", ")));
        }
        s.push_str(&format!(
            "\n[firewall]\nbackend = \"nftables\"\n\n[storage]\npath = {}\n\n[control]\nsocket = {}\n",
            toml_str(&self.state_dir().display().to_string()),
            toml_str(&self.control_socket().display().to_string()),
        ));
        if !cfg.extra.is_empty() {
            s.push('\n');
            s.push_str(&cfg.extra);
            s.push('\n');
        }
        s
    }

    /// Starts storegate in the gateway namespace with the default config plus
    /// `extra_toml` (new sections only, see [`GateConfig::extra`]).
    pub fn start_storegate(&self, extra_toml: &str) -> Storegate {
        self.start_storegate_with(&GateConfig {
            extra: extra_toml.to_string(),
            ..GateConfig::default()
        })
    }

    /// Starts storegate with config overrides and waits until it answers
    /// `ctl status`.
    pub fn start_storegate_ready(&self, cfg: &GateConfig) -> Storegate {
        let mut gate = self.start_storegate_with(cfg);
        gate.wait_ready();
        gate
    }

    /// Starts storegate with config overrides. The state dir is the same
    /// across restarts of one lab. Does not wait: see [`Storegate::wait_ready`].
    pub fn start_storegate_with(&self, cfg: &GateConfig) -> Storegate {
        let config = self.write_file("storegate.toml", &self.gate_config_toml(cfg));
        let n = {
            let mut n = self.gate_starts.lock().unwrap();
            *n += 1;
            *n
        };
        let log_path = self.path.join("storegate.log");
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("open storegate.log");
        let offset = log.seek(SeekFrom::End(0)).unwrap_or(0);
        let _ = writeln!(log, "===== lab: storegate start #{n} =====");
        let started = Instant::now();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.gw, &storegate_bin(), "run", "-c"])
            .arg(&config)
            .env(
                "RUST_LOG",
                std::env::var("SG_LAB_RUST_LOG").unwrap_or_else(|_| "info,storegate=debug".into()),
            )
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("start storegate");
        Storegate {
            pid: child.id(),
            child: Some(child),
            started,
            socket: self.control_socket(),
            config,
            log_path,
            log_offset: offset,
            dir: self.path.clone(),
            gw: self.gw.clone(),
        }
    }
}

/// A storegate daemon running in a lab's gateway namespace.
pub struct Storegate {
    child: Option<Child>,
    pid: u32,
    started: Instant,
    pub(super) socket: PathBuf,
    config: PathBuf,
    log_path: PathBuf,
    log_offset: u64,
    dir: PathBuf,
    gw: String,
}

impl Diag for Storegate {
    fn diag(&self) -> String {
        diagnostics(&self.dir, &self.gw)
    }
}

impl Storegate {
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// When the process was spawned.
    pub fn started(&self) -> Instant {
        self.started
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Is the process still running?
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Polls `ctl status` until it succeeds; returns the time since spawn.
    /// Panics with the daemon's log if it exits or is not ready in time.
    pub fn wait_ready(&mut self) -> Duration {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                fail!(self, "storegate exited with {status} before it was ready");
            }
            if self.socket.exists() && self.ctl(&["status"]).status.success() {
                return self.started.elapsed();
            }
            if Instant::now() >= deadline {
                let last = self.ctl(&["status"]);
                fail!(
                    self,
                    "storegate not ready within {READY_TIMEOUT:?} (last `ctl status`: {}: {}{})",
                    last.status,
                    String::from_utf8_lossy(&last.stdout),
                    String::from_utf8_lossy(&last.stderr)
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, sig: &str) {
        send_signal(sig, &[&self.pid.to_string()]);
    }

    /// SIGTERM, then waits for the exit (SIGKILL and a panic after 10 s).
    pub fn sigterm_and_wait(&mut self) -> ExitStatus {
        self.signal("-TERM");
        let deadline = Instant::now() + STOP_TIMEOUT;
        let child = self.child.as_mut().expect("storegate already reaped");
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.child = None;
                fail!(
                    self,
                    "storegate did not exit within {STOP_TIMEOUT:?} of SIGTERM"
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL, and reaps the process.
    pub fn sigkill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// This run's log (stderr), from the lab's start marker on.
    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = File::open(&self.log_path) {
            let _ = f.seek(SeekFrom::Start(self.log_offset));
            let mut bytes = Vec::new();
            let _ = f.read_to_end(&mut bytes);
            s = String::from_utf8_lossy(&bytes).into_owned();
        }
        s
    }
}

impl Drop for Storegate {
    fn drop(&mut self) {
        self.sigkill();
    }
}
