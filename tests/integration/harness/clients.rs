//! The phones on the guest LAN: their real DHCP clients (ISC dhclient,
//! busybox udhcpc, dhcpcd) and what they send, their MACs, their links and
//! the addresses they end up with.

use std::fs::{self, File};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use super::gateway::toml_str;
use super::lab::{Client, Lab};
use super::process::{must, run, send_signal};
use super::tail;
use crate::{check, fail};

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

impl DhcpOptions {
    /// Only a hostname (option 12).
    pub fn with_hostname(name: &str) -> DhcpOptions {
        DhcpOptions {
            hostname: Some(name.into()),
            ..DhcpOptions::default()
        }
    }
}

impl Lab {
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

    /// Takes the client's link down: it vanishes without a word, like a
    /// phone that walked out of range.
    pub fn link_down(&self, c: Client) {
        self.ip(self.ns(c), &["link", "set", "eth0", "down"]);
    }

    pub fn link_up(&self, c: Client) {
        self.ip(self.ns(c), &["link", "set", "eth0", "up"]);
    }

    /// Gives the client a new MAC: stops its DHCP client and drops its IPv4
    /// address first. Call [`Lab::dhcp`] afterwards for a lease.
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

    /// The text of the client's dhclient lease file (options as dhclient
    /// saw them, e.g. `option default-url "..."`).
    pub fn client_lease(&self, c: Client) -> String {
        fs::read_to_string(self.dhclient_files(c).0).unwrap_or_default()
    }
}
