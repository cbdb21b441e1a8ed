//! The network-namespace lab: a store's guest LAN, its gateway and "the
//! internet", built from Linux network namespaces for one test at a time.
//!
//! ```text
//!   sg-<tag>-c1  eth0 ──┐                          sg-<tag>-inet
//!   (dhclient)          ├─ br-lan ── sg-<tag>-gw ── wan0 ─── eth0
//!   sg-<tag>-c2  eth0 ──┘  192.0.2.1/24            198.51.100.1/24
//!                          2001:db8:1::1/64        198.51.100.2/24 (internet.py)
//!                          dnsmasq (DHCP, DNS)     2001:db8:2::2/64
//!                          storegate + nftables
//! ```
//!
//! Only documentation address ranges are used (RFC 5737, RFC 3849, and the
//! RFC 7042 documentation MACs). Each lab owns namespaces named after its tag,
//! removes leftovers of those names before it starts and tears everything
//! down in `Drop`, also when the test panics; nothing is shared between labs,
//! so tests run in parallel.
//!
//! This module owns the addresses, the phones, the namespaces and links,
//! the processes started in them and the teardown; what runs where is in
//! the sibling modules (`gateway`, `internet`, `clients`, `probe`).

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use super::diag::{Diag, diagnostics, say, tail};
use super::process::{is_root, must, run, send_signal};
use super::wait::poll_until;
use crate::fail;

/// The gateway's LAN address (br-lan).
pub const GW_V4: &str = "192.0.2.1";
pub const GW_V6: &str = "2001:db8:1::1";
/// The internet server.
pub const INET_V4: &str = "198.51.100.2";
pub const INET_V6: &str = "2001:db8:2::2";
/// The portal as the clients see it.
pub const PORTAL: &str = "http://192.0.2.1:2050";
pub const PORTAL_PORT: u16 = 2050;
/// The DHCP option 114 (RFC 8910) value dnsmasq hands out.
pub const CAPTIVE_API_URL: &str = "http://192.0.2.1:2050/api/captive";
/// Resolved by dnsmasq to [`INET_V4`].
pub const INET_NAME: &str = "internet.lab";
/// The body the internet server answers with.
pub const INET_BODY: &str = "hello from the internet";

const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// `ip netns add` mounts /run/netns on first use; serialise namespace
/// creation so parallel tests do not race on that.
static NETNS_LOCK: Mutex<()> = Mutex::new(());

/// One of the lab's two phones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    C1,
    C2,
}

impl Client {
    pub const ALL: [Client; 2] = [Client::C1, Client::C2];

    pub fn name(self) -> &'static str {
        match self {
            Client::C1 => "c1",
            Client::C2 => "c2",
        }
    }

    fn index(self) -> usize {
        match self {
            Client::C1 => 0,
            Client::C2 => 1,
        }
    }

    /// The client's static IPv6 address.
    pub fn ipv6(self) -> &'static str {
        match self {
            Client::C1 => "2001:db8:1::c1",
            Client::C2 => "2001:db8:1::c2",
        }
    }

    /// The MAC a fresh lab gives the client (RFC 7042 documentation range,
    /// globally administered).
    pub fn default_mac(self) -> &'static str {
        match self {
            Client::C1 => "00:00:5e:00:53:c1",
            Client::C2 => "00:00:5e:00:53:c2",
        }
    }

    /// The gateway's bridge port facing this client.
    fn port(self) -> String {
        format!("lan-{}", self.name())
    }
}

pub struct Lab {
    pub(super) tag: String,
    pub(super) gw: String,
    pub(super) inet: String,
    clients: [String; 2],
    dir: Option<tempfile::TempDir>,
    pub(super) path: PathBuf,
    pub(super) lab_scripts: PathBuf,
    children: Mutex<Vec<Child>>,
    pub(super) gate_starts: Mutex<u32>,
}

impl Lab {
    /// Builds the whole lab: namespaces, links, dnsmasq, the internet
    /// server, and a DHCP lease for both clients (with their default MACs).
    pub fn new(tag: &str) -> Option<Lab> {
        let lab = Lab::without_dhcp(tag)?;
        lab.dhcp_all();
        Some(lab)
    }

    /// Like [`Lab::new`] but the clients have no IPv4 address yet: set
    /// their MACs, then call [`Lab::dhcp`].
    pub fn without_dhcp(tag: &str) -> Option<Lab> {
        if !is_root() {
            say(&format!("skipped: needs root (lab {tag})"));
            return None;
        }
        assert!(
            !tag.is_empty()
                && tag.len() <= 12
                && tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "lab tag {tag:?}: use 1-12 of [a-zA-Z0-9-]"
        );
        let dir = tempfile::Builder::new()
            .prefix(&format!("sg-lab-{tag}-"))
            .tempdir()
            .expect("create the lab's temp dir");
        let path = dir.path().to_path_buf();
        let lab = Lab {
            tag: tag.to_string(),
            gw: format!("sg-{tag}-gw"),
            inet: format!("sg-{tag}-inet"),
            clients: [format!("sg-{tag}-c1"), format!("sg-{tag}-c2")],
            dir: Some(dir),
            path,
            lab_scripts: Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab"),
            children: Mutex::new(Vec::new()),
            gate_starts: Mutex::new(0),
        };
        // From here on, Drop cleans up whatever part got built.
        lab.remove_namespaces();
        lab.remove_stale_dirs();
        lab.build_topology();
        lab.start_services();
        Some(lab)
    }

    fn all_namespaces(&self) -> Vec<&str> {
        let mut v = vec![self.gw.as_str(), self.inet.as_str()];
        v.extend(self.clients.iter().map(String::as_str));
        v
    }

    fn remove_namespaces(&self) {
        for ns in self.all_namespaces() {
            kill_namespace_pids(ns);
            let _ = run("ip", &["netns", "del", ns]);
            let _ = fs::remove_dir_all(Path::new("/etc/netns").join(ns));
        }
    }

    /// Temp dirs of this tag left by a run that was killed (not kept ones).
    fn remove_stale_dirs(&self) {
        if std::env::var_os("SG_LAB_KEEP").is_some() {
            return;
        }
        let prefix = format!("sg-lab-{}-", self.tag);
        let parent = self
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(std::env::temp_dir);
        for entry in fs::read_dir(&parent).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) && entry.path() != self.path {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }

    /// `ip -n NS ARGS...`, which must succeed.
    pub(super) fn ip(&self, ns: &str, args: &[&str]) {
        let mut full = vec!["-n", ns];
        full.extend_from_slice(args);
        must("ip", &full);
    }

    fn sysctl(&self, ns: &str, settings: &[(&str, &str)]) {
        let mut script = String::new();
        for (key, value) in settings {
            let path = format!("/proc/sys/{}", key.replace('.', "/"));
            script.push_str(&format!("echo {value} > {path} && "));
        }
        script.push_str("true");
        must("ip", &["netns", "exec", ns, "sh", "-c", &script]);
    }

    fn build_topology(&self) {
        {
            let _guard = NETNS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            for ns in self.all_namespaces() {
                must("ip", &["netns", "add", ns]);
            }
        }
        let no_dad = [
            ("net.ipv6.conf.all.accept_dad", "0"),
            ("net.ipv6.conf.default.accept_dad", "0"),
        ];
        for ns in self.all_namespaces() {
            self.sysctl(ns, &no_dad);
            self.ip(ns, &["link", "set", "lo", "up"]);
        }
        let gw = self.gw.as_str();
        self.sysctl(
            gw,
            &[
                ("net.ipv4.ip_forward", "1"),
                ("net.ipv6.conf.all.forwarding", "1"),
                ("net.ipv6.conf.default.forwarding", "1"),
            ],
        );
        // The guest LAN.
        self.ip(gw, &["link", "add", "br-lan", "type", "bridge"]);
        self.ip(
            gw,
            &["addr", "add", &format!("{GW_V4}/24"), "dev", "br-lan"],
        );
        self.ip(
            gw,
            &[
                "addr",
                "add",
                &format!("{GW_V6}/64"),
                "dev",
                "br-lan",
                "nodad",
            ],
        );
        self.ip(gw, &["link", "set", "br-lan", "up"]);
        for c in Client::ALL {
            let ns = self.ns(c);
            let port = c.port();
            self.ip(
                gw,
                &[
                    "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", ns,
                ],
            );
            self.ip(gw, &["link", "set", &port, "master", "br-lan", "up"]);
            self.ip(ns, &["link", "set", "eth0", "address", c.default_mac()]);
            self.ip(ns, &["link", "set", "eth0", "up"]);
            self.ip(
                ns,
                &[
                    "addr",
                    "add",
                    &format!("{}/64", c.ipv6()),
                    "dev",
                    "eth0",
                    "nodad",
                ],
            );
            self.ip(
                ns,
                &["-6", "route", "add", "default", "via", GW_V6, "dev", "eth0"],
            );
        }
        // The uplink.
        let inet = self.inet.as_str();
        self.ip(
            gw,
            &[
                "link", "add", "wan0", "type", "veth", "peer", "name", "eth0", "netns", inet,
            ],
        );
        self.ip(gw, &["addr", "add", "198.51.100.1/24", "dev", "wan0"]);
        self.ip(
            gw,
            &["addr", "add", "2001:db8:2::1/64", "dev", "wan0", "nodad"],
        );
        self.ip(gw, &["link", "set", "wan0", "up"]);
        self.ip(
            inet,
            &["addr", "add", &format!("{INET_V4}/24"), "dev", "eth0"],
        );
        self.ip(
            inet,
            &[
                "addr",
                "add",
                &format!("{INET_V6}/64"),
                "dev",
                "eth0",
                "nodad",
            ],
        );
        self.ip(inet, &["link", "set", "eth0", "up"]);
        self.ip(
            inet,
            &["route", "add", "192.0.2.0/24", "via", "198.51.100.1"],
        );
        self.ip(
            inet,
            &[
                "-6",
                "route",
                "add",
                "2001:db8:1::/64",
                "via",
                "2001:db8:2::1",
            ],
        );
    }

    pub(super) fn spawn_in(&self, ns: &str, program: &str, args: &[&str], log: &str) -> Child {
        let log = File::create(self.path.join(log)).expect("create a log file");
        let mut full = vec!["netns", "exec", ns, program];
        full.extend_from_slice(args);
        Command::new("ip")
            .args(&full)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program} in {ns}: {e}"))
    }

    /// Starts a long-running program in namespace `ns` (stdout and stderr
    /// to `log` in the lab dir); it is killed with the lab.
    pub fn start_in(&self, ns: &str, program: &str, args: &[&str], log: &str) {
        let child = self.spawn_in(ns, program, args, log);
        self.children.lock().unwrap().push(child);
    }

    /// Starts the internet server and dnsmasq, and waits until both serve.
    fn start_services(&self) {
        let internet = self.spawn_internet();
        self.children.lock().unwrap().push(internet);
        let dnsmasq = self.spawn_dnsmasq();
        self.children.lock().unwrap().push(dnsmasq);

        let ok = poll_until(SETUP_TIMEOUT, Duration::from_millis(10), || {
            self.check_children();
            (self.internet_ready() && self.dnsmasq_ready()).then_some(())
        });
        if ok.is_none() {
            fail!(
                self,
                "lab {}: dnsmasq or internet.py not ready within {SETUP_TIMEOUT:?}",
                self.tag
            );
        }
    }

    /// Panics if dnsmasq or the internet server died.
    fn check_children(&self) {
        let mut children = self.children.lock().unwrap();
        for child in children.iter_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                let pid = child.id();
                drop(children);
                fail!(
                    self,
                    "lab {}: a lab service (pid {pid}) exited early with {status}\n----- dnsmasq.out -----\n{}",
                    self.tag,
                    tail(&self.path.join("dnsmasq.out"), 20)
                );
            }
        }
    }

    // ----- names and paths -----

    pub fn tag(&self) -> &str {
        &self.tag
    }

    pub fn ns(&self, c: Client) -> &str {
        &self.clients[c.index()]
    }

    pub fn gw_ns(&self) -> &str {
        &self.gw
    }

    pub fn inet_ns(&self) -> &str {
        &self.inet
    }

    /// The lab's temporary directory (logs, leases, configs, state).
    pub fn dir(&self) -> &Path {
        &self.path
    }

    /// A file in the lab dir.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes a file into the lab dir and returns its path.
    pub fn write_file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path.join(name);
        fs::write(&p, text).expect("write a lab file");
        p
    }

    // ----- running things in namespaces -----

    /// Runs a command inside a namespace.
    pub fn exec(&self, ns: &str, program: &str, args: &[&str]) -> Output {
        let mut full = vec!["netns", "exec", ns, program];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    pub fn pids(&self, ns: &str) -> Vec<String> {
        namespace_pids(ns)
    }
}

fn namespace_pids(ns: &str) -> Vec<String> {
    let out = run("ip", &["netns", "pids", ns]);
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn kill_namespace_pids(ns: &str) {
    for _ in 0..50 {
        let pids = namespace_pids(ns);
        if pids.is_empty() {
            return;
        }
        let pids: Vec<&str> = pids.iter().map(String::as_str).collect();
        send_signal("-KILL", &pids);
        thread::sleep(Duration::from_millis(10));
    }
}

impl Diag for Lab {
    fn diag(&self) -> String {
        diagnostics(&self.path, &self.gw)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for mut child in self
            .children
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.remove_namespaces();
        if let Some(dir) = self.dir.take()
            && std::env::var_os("SG_LAB_KEEP").is_some()
        {
            let kept = dir.keep();
            say(&format!("lab {}: kept {}", self.tag, kept.display()));
        }
    }
}
