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
//! The lab needs root. [`Lab::new`] returns `None` (and prints
//! "skipped: needs root") otherwise; in CI we are root and the tests run.
//!
//! Set `SG_LAB_STOREGATE=/path/to/storegate` to test another binary than
//! this build's, and `SG_LAB_RUST_LOG` for the daemon's `RUST_LOG` (default
//! `info,storegate=debug`). Set `SG_LAB_KEEP=1` to keep a lab's temporary directory (logs, leases,
//! configs, state) after the test; its path is printed.
#![allow(dead_code)]

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

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
const READY_TIMEOUT: Duration = Duration::from_secs(10);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

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

/// Which real DHCP client a phone runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DhcpClient {
    /// ISC dhclient (`-1`, stays in the background to renew, like a laptop).
    Dhclient,
    /// busybox udhcpc (`-q`: exits once bound, like a small device).
    Udhcpc,
    /// dhcpcd (`--oneshot --persistent`: configures, keeps the address,
    /// exits; no hook scripts, so nothing outside the lab is touched).
    Dhcpcd,
}

/// What the phone says about itself in its DHCP requests.
#[derive(Clone, Debug, Default)]
pub struct DhcpOptions {
    /// Option 12.
    pub hostname: Option<String>,
    /// Option 60, e.g. `android-dhcp-14` or `MSFT 5.0`.
    pub vendor_class: Option<String>,
}

/// Overrides for the storegate config the lab writes; `None` leaves the
/// daemon's default.
#[derive(Clone, Debug, Default)]
pub struct GateConfig {
    pub session_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub walled_garden: Option<Vec<String>>,
    /// Appended verbatim at the end (new sections only: a table that the
    /// base config already has cannot be opened twice in TOML).
    pub extra: String,
}

pub struct Lab {
    tag: String,
    gw: String,
    inet: String,
    clients: [String; 2],
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    lab_scripts: PathBuf,
    children: Mutex<Vec<Child>>,
    gate_starts: Mutex<u32>,
}

/// Is the effective uid 0? Read from /proc/self/status (no libc needed).
pub fn is_root() -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1).map(|euid| euid == "0"))
        .unwrap_or(false)
}

/// Prints a line that libtest does not capture.
pub fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

pub fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// The storegate binary under test: this build's, or `SG_LAB_STOREGATE`
/// (e.g. a release build or an installed package).
pub fn storegate_bin() -> String {
    std::env::var("SG_LAB_STOREGATE")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_storegate").to_string())
}

fn cmd_line(program: &str, args: &[&str]) -> String {
    let mut s = program.to_string();
    for a in args {
        s.push(' ');
        s.push_str(a);
    }
    s
}

/// Runs a command to completion, capturing its output.
pub fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", cmd_line(program, args)))
}

/// Runs a command that must succeed.
pub fn must(program: &str, args: &[&str]) -> Output {
    let out = run(program, args);
    if !out.status.success() {
        panic!(
            "`{}` failed ({}): {}{}",
            cmd_line(program, args),
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    out
}

/// Polls `f` every `every` until it returns `Some` or `timeout` passes.
pub fn poll_until<T>(
    timeout: Duration,
    every: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(every);
    }
}

/// The last `lines` lines of a file, or a note that it is missing.
pub fn tail(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            let start = all.len().saturating_sub(lines);
            let mut s = String::new();
            if start > 0 {
                s.push_str(&format!("[... {start} earlier lines]\n"));
            }
            for l in &all[start..] {
                s.push_str(l);
                s.push('\n');
            }
            s
        }
        Err(e) => format!("[{}: {e}]\n", path.display()),
    }
}

fn diagnostics(dir: &Path, gw_ns: &str) -> String {
    let nft = run("ip", &["netns", "exec", gw_ns, "nft", "list", "ruleset"]);
    let ruleset = String::from_utf8_lossy(&nft.stdout);
    let ruleset: Vec<&str> = ruleset.lines().take(120).collect();
    format!(
        "\n----- storegate log (tail) -----\n{}----- dnsmasq log (tail) -----\n{}\
         ----- internet log (tail) -----\n{}----- nft ruleset in {gw_ns} -----\n{}\n-----",
        tail(&dir.join("storegate.log"), 60),
        tail(&dir.join("dnsmasq.log"), 25),
        tail(&dir.join("internet.log"), 15),
        ruleset.join("\n"),
    )
}

/// Something that can explain a failure with the lab's logs.
pub trait Diag {
    fn diag(&self) -> String;
}

impl<T: Diag + ?Sized> Diag for &T {
    fn diag(&self) -> String {
        (**self).diag()
    }
}

impl<T: Diag + ?Sized> Diag for &mut T {
    fn diag(&self) -> String {
        (**self).diag()
    }
}

/// `assert!` that appends the lab's (or daemon's) log tails on failure.
#[macro_export]
macro_rules! check {
    ($ctx:expr, $cond:expr $(,)?) => {
        $crate::check!($ctx, $cond, "{}", stringify!($cond))
    };
    ($ctx:expr, $cond:expr, $($fmt:tt)+) => {
        if $cond {
        } else {
            panic!("check failed: {}{}", format!($($fmt)+), $crate::lab::Diag::diag(&$ctx));
        }
    };
}

/// `assert_eq!` that appends the lab's (or daemon's) log tails on failure.
#[macro_export]
macro_rules! check_eq {
    ($ctx:expr, $left:expr, $right:expr $(,)?) => {
        $crate::check_eq!($ctx, $left, $right, "{} == {}", stringify!($left), stringify!($right))
    };
    ($ctx:expr, $left:expr, $right:expr, $($fmt:tt)+) => {
        match (&$left, &$right) {
            (l, r) => {
                if !(*l == *r) {
                    panic!(
                        "check failed: {}\n  left: {:?}\n right: {:?}{}",
                        format!($($fmt)+), l, r, $crate::lab::Diag::diag(&$ctx)
                    );
                }
            }
        }
    };
}

/// Panics with a message and the lab's (or daemon's) log tails.
#[macro_export]
macro_rules! fail {
    ($ctx:expr, $($fmt:tt)+) => {
        panic!("{}{}", format!($($fmt)+), $crate::lab::Diag::diag(&$ctx))
    };
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

    fn ip(&self, ns: &str, args: &[&str]) {
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

    fn spawn_in(&self, ns: &str, program: &str, args: &[&str], log: &str) -> Child {
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

    /// A file in the lab dir.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn start_services(&self) {
        let dir = self.path.display().to_string();
        let ready = self.path.join("internet.ready");
        let internet = self.spawn_in(
            &self.inet,
            python(),
            &[
                &self.lab_scripts.join("internet.py").display().to_string(),
                &ready.display().to_string(),
            ],
            "internet.log",
        );
        self.children.lock().unwrap().push(internet);

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
        let dnsmasq = self.spawn_in(&self.gw, "dnsmasq", &args, "dnsmasq.out");
        self.children.lock().unwrap().push(dnsmasq);

        let dnsmasq_log = self.path.join("dnsmasq.log");
        let ok = poll_until(SETUP_TIMEOUT, Duration::from_millis(10), || {
            self.check_children();
            let internet_ready = ready.exists();
            let dnsmasq_ready = fs::read_to_string(&dnsmasq_log)
                .map(|s| s.contains("DHCP, IP range"))
                .unwrap_or(false);
            (internet_ready && dnsmasq_ready).then_some(())
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

    pub fn state_dir(&self) -> PathBuf {
        self.path.join("state")
    }

    pub fn control_socket(&self) -> PathBuf {
        self.path.join("control.sock")
    }

    // ----- DHCP and addresses -----

    fn dhclient_files(&self, c: Client) -> (PathBuf, PathBuf, PathBuf) {
        let n = c.name();
        (
            self.path.join(format!("{n}.dhclient.leases")),
            self.path.join(format!("{n}.dhclient.pid")),
            self.path.join(format!("{n}.dhcp.log")),
        )
    }

    fn spawn_dhcp(&self, c: Client, client: DhcpClient, opts: &DhcpOptions) -> Child {
        let (leases, pid, log) = self.dhclient_files(c);
        let log = File::create(log).expect("create the DHCP client log");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.ns(c)]);
        match client {
            DhcpClient::Dhclient => {
                let mut conf = String::from(
                    // Debian's stock request list (so the lab's phones carry a
                    // real fingerprint), with the option 121 name it declares.
                    "timeout 10;\nretry 1;\ninitial-interval 1;\nselect-timeout 0;\nreboot 0;\n\
                     option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;\n\
                     request subnet-mask, broadcast-address, time-offset, routers, domain-name,\
                     domain-name-servers, domain-search, host-name, netbios-name-servers,\
                     netbios-scope, interface-mtu, rfc3442-classless-static-routes, ntp-servers;\n\
                     also request default-url;\n",
                );
                if let Some(h) = &opts.hostname {
                    conf.push_str(&format!("send host-name {};\n", toml_str(h)));
                }
                if let Some(v) = &opts.vendor_class {
                    conf.push_str(&format!("send vendor-class-identifier {};\n", toml_str(v)));
                }
                let conf_path = self.write_file(&format!("{}.dhclient.conf", c.name()), &conf);
                let _ = fs::remove_file(&leases);
                cmd.args(["dhclient", "-4", "-1", "-v", "-sf"])
                    .arg(self.lab_scripts.join("dhclient-script"))
                    .arg("-lf")
                    .arg(&leases)
                    .arg("-pf")
                    .arg(&pid)
                    .arg("-cf")
                    .arg(&conf_path)
                    .arg("eth0");
            }
            DhcpClient::Udhcpc => {
                // Foreground, give up after 5 tries 1 s apart, exit once bound.
                cmd.args([
                    "busybox", "udhcpc", "-f", "-q", "-n", "-t", "5", "-T", "1", "-i", "eth0",
                    "-O", "114", "-s",
                ])
                .arg(self.lab_scripts.join("udhcpc-script"));
                if let Some(h) = &opts.hostname {
                    cmd.arg("-x").arg(format!("hostname:{h}"));
                }
                if let Some(v) = &opts.vendor_class {
                    cmd.arg("-V").arg(v);
                }
            }
            DhcpClient::Dhcpcd => {
                cmd.args([
                    "dhcpcd",
                    "--config",
                    "/dev/null",
                    "--ipv4only",
                    "--oneshot",
                    "--persistent",
                    "--nobackground",
                    "--noipv4ll",
                    "--noarp",
                    "--timeout",
                    "10",
                    "--script",
                    "/bin/true",
                ]);
                if let Some(h) = &opts.hostname {
                    cmd.arg("--hostname").arg(h);
                }
                if let Some(v) = &opts.vendor_class {
                    cmd.arg("--vendorclassid").arg(v);
                }
                cmd.arg("eth0");
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {client:?}: {e}"))
    }

    fn finish_dhcp(&self, c: Client, client: DhcpClient, mut child: Child) {
        let status = child.wait().expect("wait for the DHCP client");
        if !status.success() {
            let (_, _, log) = self.dhclient_files(c);
            fail!(
                self,
                "{client:?} for {} failed ({status}):\n{}",
                c.name(),
                tail(&log, 30)
            );
        }
        // The script has run by the time the client exits (udhcpc -q) or
        // goes to the background (dhclient -1).
        let ip = self.try_client_ip(c);
        check!(
            self,
            ip.is_some(),
            "{} has no IPv4 address after {client:?}",
            c.name()
        );
    }

    /// Gets (or renews from scratch) the client's IPv4 lease with dhclient.
    pub fn dhcp(&self, c: Client) {
        self.dhcp_with(c, DhcpClient::Dhclient, &DhcpOptions::default());
    }

    /// Gets a lease with the given DHCP client, sending the given options.
    pub fn dhcp_with(&self, c: Client, client: DhcpClient, opts: &DhcpOptions) {
        self.stop_dhclient(c);
        let child = self.spawn_dhcp(c, client, opts);
        self.finish_dhcp(c, client, child);
    }

    /// dhclient for both clients at once.
    pub fn dhcp_all(&self) {
        let client = DhcpClient::Dhclient;
        let children: Vec<(Client, Child)> = Client::ALL
            .iter()
            .map(|&c| {
                self.stop_dhclient(c);
                (c, self.spawn_dhcp(c, client, &DhcpOptions::default()))
            })
            .collect();
        for (c, child) in children {
            self.finish_dhcp(c, client, child);
        }
    }

    /// Sends a DHCPRELEASE (`dhclient -r`) and drops the address.
    pub fn dhcp_release(&self, c: Client) {
        let (leases, pid, _) = self.dhclient_files(c);
        let script = self
            .lab_scripts
            .join("dhclient-script")
            .display()
            .to_string();
        let (leases, pid) = (leases.display().to_string(), pid.display().to_string());
        let out = run(
            "ip",
            &[
                "netns",
                "exec",
                self.ns(c),
                "dhclient",
                "-4",
                "-r",
                "-sf",
                &script,
                "-lf",
                &leases,
                "-pf",
                &pid,
                "eth0",
            ],
        );
        check!(
            self,
            out.status.success(),
            "dhclient -r: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.flush_ipv4(c);
    }

    /// Stops the client's dhclient (if any) without a release.
    pub fn stop_dhclient(&self, c: Client) {
        let (_, pid_file, _) = self.dhclient_files(c);
        if let Ok(pid) = fs::read_to_string(&pid_file) {
            let pid = pid.trim();
            if !pid.is_empty() && self.pids(self.ns(c)).iter().any(|p| p == pid) {
                send_signal("-KILL", &[pid]);
            }
            let _ = fs::remove_file(&pid_file);
        }
    }

    fn flush_ipv4(&self, c: Client) {
        self.ip(self.ns(c), &["-4", "addr", "flush", "dev", "eth0"]);
    }

    /// Gives the client a new MAC: stops its DHCP client and drops its IPv4
    /// address first. Call [`Lab::dhcp`] afterwards for a lease.
    /// Takes the client's link down: it vanishes without a word, like a
    /// phone that walked out of range.
    pub fn link_down(&self, c: Client) {
        self.ip(self.ns(c), &["link", "set", "eth0", "down"]);
    }

    pub fn set_mac(&self, c: Client, mac: &str) {
        self.stop_dhclient(c);
        self.flush_ipv4(c);
        self.ip(self.ns(c), &["link", "set", "eth0", "address", mac]);
    }

    pub fn client_mac(&self, c: Client) -> String {
        let out = must(
            "ip",
            &["-n", self.ns(c), "-j", "link", "show", "dev", "eth0"],
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("ip -j link");
        v[0]["address"].as_str().expect("link address").to_string()
    }

    fn try_client_ip(&self, c: Client) -> Option<String> {
        let out = must(
            "ip",
            &["-n", self.ns(c), "-j", "-4", "addr", "show", "dev", "eth0"],
        );
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        v[0]["addr_info"]
            .as_array()?
            .iter()
            .find(|a| a["family"] == "inet")
            .and_then(|a| a["local"].as_str().map(str::to_string))
    }

    /// The client's leased IPv4 address.
    pub fn client_ip(&self, c: Client) -> String {
        match self.try_client_ip(c) {
            Some(ip) => ip,
            None => fail!(self, "{} has no IPv4 address", c.name()),
        }
    }

    /// dnsmasq's lease file (`expiry mac ip hostname client-id` lines).
    pub fn dnsmasq_leases(&self) -> String {
        fs::read_to_string(self.path.join("dnsmasq.leases")).unwrap_or_default()
    }

    /// The text of the client's dhclient lease file (options as dhclient
    /// saw them, e.g. `option default-url "..."`).
    pub fn client_lease(&self, c: Client) -> String {
        fs::read_to_string(self.dhclient_files(c).0).unwrap_or_default()
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

    /// `nft list ruleset` in the gateway.
    pub fn nft_ruleset(&self) -> String {
        String::from_utf8_lossy(&self.exec(&self.gw, "nft", &["list", "ruleset"]).stdout)
            .into_owned()
    }

    // ----- probes from a client -----

    /// Runs `tests/lab/probe.py ARGS` in the client's namespace.
    pub fn probe(&self, c: Client, args: &[&str]) -> Probe {
        self.probe_stdin(c, args, None)
    }

    fn probe_stdin(&self, c: Client, args: &[&str], stdin: Option<&[u8]>) -> Probe {
        let script = self.lab_scripts.join("probe.py").display().to_string();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.ns(c), python(), &script])
            .args(args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = cmd.spawn().expect("start probe.py");
        let writer = stdin.map(|data| {
            let mut pipe = child.stdin.take().expect("probe stdin");
            let data = data.to_vec();
            thread::spawn(move || {
                let _ = pipe.write_all(&data);
            })
        });
        let out = child.wait_with_output().expect("wait for probe.py");
        if let Some(w) = writer {
            let _ = w.join();
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout.lines().last().unwrap_or("");
        match serde_json::from_str::<Value>(line) {
            Ok(json) if out.status.success() => Probe {
                what: format!("{} probe {}", c.name(), args.join(" ")),
                json,
            },
            _ => fail!(
                self,
                "probe.py {} in {} failed ({}): {}{}",
                args.join(" "),
                c.name(),
                out.status,
                stdout,
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }

    /// `GET url` without following redirects (3 s timeout).
    pub fn http(&self, c: Client, url: &str) -> Probe {
        self.probe(c, &["http", url])
    }

    pub fn http_timeout(&self, c: Client, url: &str, timeout_s: f64) -> Probe {
        self.probe(c, &["http", url, "--timeout", &timeout_s.to_string()])
    }

    /// `POST url` with a form body such as `accept_terms=yes`.
    pub fn post(&self, c: Client, url: &str, form: &str) -> Probe {
        self.probe(c, &["http", url, "--data", form])
    }

    /// The portal's form token for `c`: the hidden `csrf` field of the
    /// sign-in page as `c` gets it (every portal form must carry it).
    pub fn portal_token(&self, c: Client) -> String {
        let page = self.http(c, &format!("{PORTAL}/login"));
        match csrf_field(page.body()) {
            Some(token) if !token.is_empty() => token,
            _ => fail!(
                self,
                "no csrf field on the sign-in page for {}: {page}",
                c.name()
            ),
        }
    }

    /// `POST url` with `form` from the portal's pages, as a browser sends
    /// it: with `c`'s form token.
    pub fn portal_post(&self, c: Client, url: &str, form: &str) -> Probe {
        let token = self.portal_token(c);
        let sep = if form.is_empty() { "" } else { "&" };
        self.post(c, url, &format!("{form}{sep}csrf={token}"))
    }

    pub fn tcp(&self, c: Client, host: &str, port: u16, timeout_s: f64) -> Probe {
        self.probe(c, &["tcp", host, &port.to_string(), &timeout_s.to_string()])
    }

    pub fn udp(&self, c: Client, host: &str, port: u16, timeout_s: f64) -> Probe {
        self.probe(c, &["udp", host, &port.to_string(), &timeout_s.to_string()])
    }

    /// An A query for `name` sent to `server`.
    pub fn dns(&self, c: Client, name: &str, server: &str) -> Probe {
        self.probe(c, &["dns", name, server])
    }

    /// Sends `data` over a raw TCP connection and reads the answer.
    pub fn raw(&self, c: Client, host: &str, port: u16, timeout_s: f64, data: &[u8]) -> Probe {
        self.probe_stdin(
            c,
            &["raw", host, &port.to_string(), &timeout_s.to_string()],
            Some(data),
        )
    }

    /// Can the client fetch the internet server's page on port 80 (v4)?
    pub fn has_internet(&self, c: Client) -> bool {
        let p = self.http_timeout(c, &format!("http://{INET_V4}/"), 1.0);
        p.status() == Some(200) && p.body().contains(INET_BODY)
    }

    /// Polls until `has_internet(c) == want`; returns how long it took.
    pub fn wait_internet(&self, c: Client, want: bool, timeout: Duration) -> Option<Duration> {
        let start = Instant::now();
        poll_until(timeout, Duration::from_millis(50), || {
            (self.has_internet(c) == want).then(|| start.elapsed())
        })
    }

    // ----- storegate -----

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

    /// Writes a file into the lab dir and returns its path.
    pub fn write_file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path.join(name);
        fs::write(&p, text).expect("write a lab file");
        p
    }

    /// Starts storegate in the gateway namespace with the default config plus
    /// `extra_toml` (new sections only, see [`GateConfig::extra`]).
    pub fn start_storegate(&self, extra_toml: &str) -> Storegate {
        self.start_storegate_with(&GateConfig {
            extra: extra_toml.to_string(),
            ..GateConfig::default()
        })
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

fn toml_str(s: &str) -> String {
    serde_json::to_string(s).expect("a JSON string is a TOML basic string")
}

fn namespace_pids(ns: &str) -> Vec<String> {
    let out = run("ip", &["netns", "pids", ns]);
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// `kill SIG PIDS...` through the shell's builtin (no procps needed).
fn send_signal(sig: &str, pids: &[&str]) {
    let mut args = vec!["-c", "kill \"$@\" 2>/dev/null", "sh", sig];
    args.extend_from_slice(pids);
    let _ = run("sh", &args);
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
        if let Some(dir) = self.dir.take() {
            if std::env::var_os("SG_LAB_KEEP").is_some() {
                let kept = dir.keep();
                say(&format!("lab {}: kept {}", self.tag, kept.display()));
            }
        }
    }
}

/// The result of one `probe.py` run: the JSON object it printed.
#[derive(Clone)]
pub struct Probe {
    pub what: String,
    pub json: Value,
}

impl Probe {
    /// `response`, `connected`, `reply`, `answer`, or a failure kind
    /// (`refused`, `timeout`, `reset`, `closed`, `unreachable`, `other`).
    pub fn result(&self) -> &str {
        self.json["result"].as_str().unwrap_or("")
    }

    pub fn status(&self) -> Option<u16> {
        self.json["status"].as_u64().map(|s| s as u16)
    }

    /// A response header (name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.json["headers"][name.to_ascii_lowercase()].as_str()
    }

    pub fn body(&self) -> &str {
        self.json["body"].as_str().unwrap_or("")
    }

    /// Raw bytes received by a `raw` probe (latin-1).
    pub fn data(&self) -> &str {
        self.json["data"].as_str().unwrap_or("")
    }

    pub fn elapsed_ms(&self) -> f64 {
        self.json["elapsed_ms"].as_f64().unwrap_or(f64::NAN)
    }

    /// The A records of a `dns` probe.
    pub fn a_records(&self) -> Vec<String> {
        self.json["a"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The body parsed as JSON.
    pub fn body_json(&self) -> Option<Value> {
        serde_json::from_str(self.body()).ok()
    }
}

impl fmt::Debug for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} => {}", self.what, self.json)
    }
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A storegate daemon running in a lab's gateway namespace.
pub struct Storegate {
    child: Option<Child>,
    pid: u32,
    started: Instant,
    socket: PathBuf,
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

    /// `storegate ctl -s SOCKET ARGS...`
    pub fn ctl(&self, args: &[&str]) -> Output {
        Command::new(storegate_bin())
            .arg("ctl")
            .arg("-s")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run storegate ctl")
    }

    /// `ctl ARGS... --json`, which must succeed and print one JSON document.
    pub fn ctl_json(&self, args: &[&str]) -> Value {
        let mut full = args.to_vec();
        full.push("--json");
        let out = self.ctl(&full);
        check!(
            self,
            out.status.success(),
            "ctl {} failed ({}): {}",
            full.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        match serde_json::from_slice(&out.stdout) {
            Ok(v) => v,
            Err(e) => fail!(
                self,
                "ctl {}: not JSON ({e}): {}",
                full.join(" "),
                String::from_utf8_lossy(&out.stdout)
            ),
        }
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
            if let Some(child) = &mut self.child {
                if let Ok(Some(status)) = child.try_wait() {
                    fail!(self, "storegate exited with {status} before it was ready");
                }
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

/// The value of the first `name="csrf"` hidden field in a portal page.
pub fn csrf_field(html: &str) -> Option<String> {
    const FIELD: &str = "name=\"csrf\" value=\"";
    let at = html.find(FIELD)? + FIELD.len();
    let len = html[at..].find('"')?;
    Some(html[at..at + len].to_string())
}
