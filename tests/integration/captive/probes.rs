//! Before sign-in a phone gets DNS, DHCP and the portal, and nothing else:
//! port-80 HTTP to the internet is redirected to the sign-in page with the
//! original URL, TCP 443 is refused at once, other TCP and UDP are dropped,
//! over IPv4 and IPv6.

use crate::harness::internet::inet_url;
use crate::harness::portal::assert_redirected;
use crate::harness::probe::{assert_refused_at_once, side_by_side};
use crate::harness::{self, Client, GateConfig, INET_V4, INET_V6, PORTAL, gate_lab};
use crate::{check, check_eq};

const C1: Client = Client::C1;

#[test]
fn before_sign_in_only_dns_and_the_portal() {
    let Some((lab, _gate)) = gate_lab("pre", GateConfig::default()) else {
        return;
    };

    assert_redirected(&lab, C1, &inet_url("/news/today?lang=en&x=1"));
    assert_redirected(&lab, C1, &inet_url("/"));
    let login = lab.http(C1, &format!("{PORTAL}/login"));
    check_eq!(lab, login.status(), Some(200), "{login}");
    check!(lab, login.body().contains("<form"), "{login}");

    let dns = lab.dns(C1, harness::INET_NAME, harness::GW_V4);
    check_eq!(
        lab,
        dns.a_records(),
        vec![INET_V4.to_string()],
        "DNS before sign-in: {dns}"
    );

    // The slow probes (they wait for a timeout) run side by side.
    let [tcp8080, udp, tls, http6, tcp6] = side_by_side([
        &|| lab.tcp(C1, INET_V4, 8080, 1.0),
        &|| lab.udp(C1, INET_V4, 9999, 1.0),
        &|| lab.tcp(C1, INET_V4, 443, 2.0),
        &|| lab.http_timeout(C1, &format!("http://[{INET_V6}]/"), 1.5),
        &|| lab.tcp(C1, INET_V6, 8080, 1.0),
    ]);
    check_eq!(
        lab,
        tcp8080.result(),
        "timeout",
        "TCP 8080 before sign-in: {tcp8080}"
    );
    check!(
        lab,
        udp.result() != "reply",
        "UDP echo before sign-in: {udp}"
    );
    assert_refused_at_once(&lab, &tls, "TCP 443 before sign-in");
    check!(
        lab,
        http6.status() != Some(200),
        "IPv6 HTTP before sign-in: {http6}"
    );
    if http6.status() == Some(302) {
        check!(
            lab,
            http6.header("location").unwrap_or("").contains("/login"),
            "{http6}"
        );
    }
    check!(
        lab,
        tcp6.result() != "connected",
        "IPv6 TCP 8080 before sign-in: {tcp6}"
    );
}
