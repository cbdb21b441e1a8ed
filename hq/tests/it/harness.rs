//! What the HQ tests run: real `nats-server` processes (JetStream, one
//! node or a 3-node cluster) on loopback free ports with their storage in
//! a temporary directory, `storegate-hq` processes on a written
//! `hq.toml`, the box's own `storegate` daemon, a small HTTP/1.1 client,
//! and signed requests. Every process is killed when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use storegate::uplink::signing::SigningKey;

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `ready`, or panics after `within`.
pub fn wait_until(what: &str, within: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A fresh `whsec_` secret.
pub fn secret(seed: u8) -> String {
    use base64::Engine;
    let mut key = [seed; 24];
    key[0] = rand_byte();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

fn rand_byte() -> u8 {
    (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        & 0xff) as u8
}

/// A child process killed (SIGKILL) and reaped when dropped.
pub struct Proc(pub Option<Child>);

impl Proc {
    pub fn kill(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    /// SIGTERM, then wait for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One `nats-server` with JetStream.
pub struct Nats {
    pub port: u16,
    args: Vec<String>,
    pub proc: Proc,
}

impl Nats {
    /// A single node.
    pub fn single(dir: &Path) -> Nats {
        let port = free_port();
        let args = vec![
            "-a".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
            "-js".into(),
            "-sd".into(),
            dir.join("nats").display().to_string(),
        ];
        let mut n = Nats {
            port,
            args,
            proc: Proc(None),
        };
        n.start();
        n
    }

    /// A 3-node cluster: every node routes to the others.
    pub fn cluster(dir: &Path) -> Vec<Nats> {
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
        let mut nodes: Vec<Nats> = ports
            .iter()
            .enumerate()
            .map(|(i, (port, cport))| {
                let routes: Vec<String> = ports
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, (_, c))| format!("nats://127.0.0.1:{c}"))
                    .collect();
                let args = vec![
                    "-a".into(),
                    "127.0.0.1".into(),
                    "-p".into(),
                    port.to_string(),
                    "-n".into(),
                    format!("n{i}"),
                    "-js".into(),
                    "-sd".into(),
                    dir.join(format!("nats-n{i}")).display().to_string(),
                    "--cluster_name".into(),
                    "hqtest".into(),
                    "--cluster".into(),
                    format!("nats://127.0.0.1:{cport}"),
                    "--routes".into(),
                    routes.join(","),
                ];
                Nats {
                    port: *port,
                    args,
                    proc: Proc(None),
                }
            })
            .collect();
        for n in &mut nodes {
            n.start();
        }
        nodes
    }

    pub fn start(&mut self) {
        // Debian installs it in /usr/sbin, which a user's PATH may lack.
        let program = if Path::new("/usr/sbin/nats-server").exists() {
            "/usr/sbin/nats-server"
        } else {
            "nats-server"
        };
        let child = Command::new(program)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server (Debian package nats-server)");
        self.proc = Proc(Some(child));
        let port = self.port;
        wait_until("nats-server", Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

/// The stores a test's HQ knows: (id, secret).
pub type Stores<'a> = &'a [(&'a str, &'a str)];

/// An `hq.toml`.
pub fn hq_toml(
    port: u16,
    servers: &[String],
    replicas: usize,
    stores: Stores,
    extra: &str,
) -> String {
    let servers: Vec<String> = servers.iter().map(|s| format!("{s:?}")).collect();
    let mut t = format!(
        "listen = \"127.0.0.1:{port}\"\n{extra}\n[nats]\nservers = [{}]\n[jetstream]\nreplicas = {replicas}\n",
        servers.join(", ")
    );
    for (id, secret) in stores {
        t.push_str(&format!(
            "[[stores]]\nid = \"{id}\"\ntimezone = \"Asia/Shanghai\"\nsecrets = [{{ secret = \"{secret}\" }}]\n"
        ));
    }
    t
}

/// A `storegate-hq` process.
pub struct Hq {
    pub port: u16,
    pub config: PathBuf,
    pub log: PathBuf,
    role: String,
    pub proc: Proc,
}

impl Hq {
    /// Starts `storegate-hq -c <dir>/<name>.toml` on `toml` and waits
    /// until it serves (or, as a messenger only, runs).
    pub fn start(dir: &Path, name: &str, port: u16, toml: &str, role: &str) -> Hq {
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(&config, toml).unwrap();
        let mut hq = Hq {
            port,
            config,
            log: dir.join(format!("{name}.log")),
            role: role.to_string(),
            proc: Proc(None),
        };
        hq.restart();
        hq
    }

    pub fn restart(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_storegate-hq"))
            .arg("-c")
            .arg(&self.config)
            .args(["--role", &self.role])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start storegate-hq");
        self.proc = Proc(Some(child));
        let (log, port, role) = (self.log.clone(), self.port, self.role.clone());
        let proc = &mut self.proc;
        wait_until("storegate-hq to start", Duration::from_secs(30), || {
            if let Some(c) = proc.0.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!(
                    "storegate-hq exited ({status}): {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            if role == "messenger" {
                std::fs::read_to_string(&log).is_ok_and(|l| l.contains("messenger running"))
            } else {
                TcpStream::connect(("127.0.0.1", port)).is_ok()
            }
        });
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }
}

/// One HTTP/1.1 request (`Connection: close`); `None` if the server
/// could not be reached or answered nothing.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Option<Answer> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut reader = BufReader::new(s);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let status: u16 = line.split(' ').nth(1)?.parse().ok()?;
    let mut headers = Vec::new();
    let mut length = None;
    loop {
        let mut l = String::new();
        reader.read_line(&mut l).ok()?;
        let l = l.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((n, v)) = l.split_once(':') {
            if n.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse::<usize>().ok();
            }
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut body = Vec::new();
    match length {
        Some(n) => {
            body.resize(n, 0);
            reader.read_exact(&mut body).ok()?;
        }
        None => {
            reader.read_to_end(&mut body).ok()?;
        }
    }
    Some(Answer {
        status,
        headers,
        body,
    })
}

/// Signature headers for `body` under `secret`, with a fresh id.
pub fn signed(secret: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    let key = SigningKey::from_secret(secret).unwrap();
    let id = format!("msg_{}", uuid::Uuid::now_v7());
    key.headers(&id, jiff::Timestamp::now().as_second(), body)
        .to_vec()
}

/// POSTs a signed event batch.
pub fn post_batch(port: u16, path: &str, secret: &str, events: &[Value]) -> Option<Answer> {
    let body = serde_json::to_vec(events).unwrap();
    let mut h = signed(secret, &body);
    h.push(("content-type", "application/cloudevents-batch+json".into()));
    request(port, "POST", path, &h, &body)
}

/// A CloudEvent as a box makes it.
pub fn event(store: &str, ty: &str, seq: u64, data: Value) -> Value {
    serde_json::json!({
        "specversion": "1.0", "id": uuid::Uuid::now_v7().to_string(),
        "source": format!("/stores/{store}"), "type": format!("com.storegate.{ty}"),
        "time": jiff::Timestamp::now().to_string(), "sequence": seq.to_string(),
        "datacontenttype": "application/json", "data": data,
    })
}

/// Every message in the stream under `filter` (`storegate.>`), as JSON,
/// read from `nats_url`.
pub async fn stream_events(nats_url: &str, filter: &str) -> Vec<Value> {
    use futures_util::StreamExt;
    let client = async_nats::connect(nats_url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream("STOREGATE").await.unwrap();
    let info = stream.info().await.unwrap();
    let total = info.state.messages as usize;
    if total == 0 {
        return Vec::new();
    }
    let consumer: async_nats::jetstream::consumer::OrderedPullConsumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
            filter_subject: filter.to_string(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut out = Vec::new();
    let mut messages = consumer.messages().await.unwrap();
    while let Ok(Some(Ok(m))) =
        tokio::time::timeout(Duration::from_millis(500), messages.next()).await
    {
        let last = m.info().map(|i| i.pending == 0).unwrap_or(false);
        out.push(serde_json::from_slice(&m.payload).unwrap());
        if last {
            break;
        }
    }
    out
}

/// The box's `storegate` binary, built by the workspace's tests (or
/// built here if this crate's tests run alone).
pub fn storegate_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let bin = dir.join("storegate");
    if !bin.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "storegate", "--bin", "storegate"])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .status()
            .unwrap();
        assert!(status.success(), "building storegate");
    }
    bin
}

/// A box daemon on loopback (no firewall), delivering to `hq_url`.
pub struct BoxDaemon {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub socket: PathBuf,
    pub proc: Proc,
}

impl BoxDaemon {
    pub fn start(dir: &Path, store: &str, hq_url: &str, secret: &str) -> BoxDaemon {
        std::fs::create_dir_all(dir).unwrap();
        let socket = dir.join("control.sock");
        let config = dir.join("storegate.toml");
        std::fs::write(
            &config,
            format!(
                "[store]\nid = \"{store}\"\n[lan]\ninterface = \"lo\"\n[portal]\nlisten = \"127.0.0.1:{}\"\n\
                 [firewall]\nbackend = \"none\"\n[storage]\npath = \"{}\"\n[control]\nsocket = \"{}\"\n\
                 [hq]\nurl = \"{hq_url}\"\nsecret = \"{secret}\"\n",
                free_port(),
                dir.join("state").display(),
                socket.display()
            ),
        )
        .unwrap();
        let mut d = BoxDaemon {
            dir: dir.to_path_buf(),
            config,
            socket,
            proc: Proc(None),
        };
        d.restart();
        d
    }

    pub fn restart(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("storegate.log"))
            .unwrap();
        let child = Command::new(storegate_bin())
            .args(["run", "-c"])
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.proc = Proc(Some(child));
        wait_until("the box daemon", Duration::from_secs(20), || {
            self.ctl(&["status"]).is_some()
        });
    }

    /// `storegate ctl -s SOCKET ARGS --json`, parsed.
    pub fn ctl(&self, args: &[&str]) -> Option<Value> {
        let out = Command::new(storegate_bin())
            .arg("ctl")
            .arg("-s")
            .arg(&self.socket)
            .args(args)
            .arg("--json")
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).ok())
            .flatten()
    }

    /// `ctl auth` on made-up MACs: one `session.authorized` event each.
    pub fn make_events(&self, prefix: u8, from: u8, n: u8) {
        for i in from..from + n {
            let mac = format!("02:00:00:00:{prefix:02x}:{i:02x}");
            assert!(self.ctl(&["auth", &mac]).is_some(), "ctl auth {mac}");
        }
    }

    pub fn queued(&self) -> Option<u64> {
        self.ctl(&["status"])?["outbox"]["queued"].as_u64()
    }
}
