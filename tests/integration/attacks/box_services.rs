//! Signing in opens the Internet, never the router: a signed-in guest's
//! TCP to the box's own ports is refused at once, while DNS, DHCP and the
//! portal keep working.

use std::time::Duration;

use crate::harness::portal::{assert_online, sign_in};
use crate::harness::probe::{assert_refused_at_once, side_by_side};
use crate::harness::wait::poll_until;
use crate::harness::{self, Client, GW_V4, GateConfig, INET_V4, PORTAL, gate_lab};
use crate::{check, check_eq, fail};

const C1: Client = Client::C1;

/// Services a router runs for its owner: SSH, its web interface (plain
/// and TLS) and something on a high port. The dashboard (8443) is the
/// daemon's own.
const BOX_PORTS: [u16; 4] = [22, 80, 443, 40_000];
const DASHBOARD_PORT: u16 = 8443;

/// Listens on every port named on the command line and closes each
/// connection it accepts: something real behind each port, so a refusal
/// comes from the firewall, not from a closed port.
const LISTENER: &str = r#"
import socket, sys, threading
def serve(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(16)
    while True:
        c, _ = s.accept(); c.close()
for p in sys.argv[1:]:
    threading.Thread(target=serve, args=(int(p),), daemon=True).start()
print("listening", flush=True)
threading.Event().wait()
"#;

#[test]
fn a_signed_in_guest_reaches_no_service_of_the_box() {
    let Some((lab, _gate)) = gate_lab("svc", GateConfig::default()) else {
        return;
    };
    let ports: Vec<String> = BOX_PORTS.iter().map(u16::to_string).collect();
    let mut args = vec!["-c", LISTENER];
    args.extend(ports.iter().map(String::as_str));
    lab.start_in(lab.gw_ns(), "python3", &args, "box-services.out");
    let listening = poll_until(Duration::from_secs(5), Duration::from_millis(50), || {
        let out = lab.exec(lab.gw_ns(), "ss", &["-ltnH"]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        BOX_PORTS
            .iter()
            .all(|p| text.contains(&format!(":{p} ")))
            .then_some(())
    });
    if listening.is_none() {
        fail!(lab, "the box's stand-in services did not start");
    }
    // The services really answer on the box itself.
    let local = lab.exec(
        lab.gw_ns(),
        "python3",
        &[
            "-c",
            "import socket; socket.create_connection(('127.0.0.1', 22), 2).close()",
        ],
    );
    check!(
        lab,
        local.status.success(),
        "the stand-in SSH does not answer locally"
    );

    sign_in(&lab, C1);
    assert_online(&lab, C1);

    let probes = side_by_side([
        &|| lab.tcp(C1, GW_V4, BOX_PORTS[0], 2.0),
        &|| lab.tcp(C1, GW_V4, BOX_PORTS[1], 2.0),
        &|| lab.tcp(C1, GW_V4, BOX_PORTS[2], 2.0),
        &|| lab.tcp(C1, GW_V4, BOX_PORTS[3], 2.0),
        &|| lab.tcp(C1, GW_V4, DASHBOARD_PORT, 1.0),
    ]);
    for (port, p) in BOX_PORTS.iter().zip(&probes[..4]) {
        let what = format!("a signed-in guest's TCP to the box's port {port}");
        assert_refused_at_once(&lab, p, &what);
    }
    let dash = &probes[4];
    check!(
        lab,
        dash.result() != "connected",
        "a signed-in guest reached the dashboard: {dash}"
    );

    // What a guest does need still works.
    let dns = lab.dns(C1, harness::INET_NAME, GW_V4);
    check_eq!(
        lab,
        dns.a_records(),
        vec![INET_V4.to_string()],
        "DNS: {dns}"
    );
    let status = lab.http(C1, &format!("{PORTAL}/status"));
    check_eq!(
        lab,
        status.status(),
        Some(200),
        "the portal's status page: {status}"
    );
    lab.dhcp(C1);
    assert_online(&lab, C1);
}
