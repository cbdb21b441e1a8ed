//! Proves the lab before the gate is added: with no storegate running, both
//! clients get a DHCP lease from dnsmasq (with the captive-portal option
//! 114), DNS on the gateway resolves `internet.lab`, and a client reaches the
//! internet server over HTTP (IPv4 and IPv6) and UDP. If this fails, the
//! captive tests' failures say nothing about storegate.

use std::time::Instant;

use crate::harness::{self, Client, DhcpClient, DhcpOptions, Lab};
use crate::{check, check_eq};

#[test]
fn lab_smoke() {
    let t0 = Instant::now();
    let Some(lab) = Lab::new("smoke") else { return };
    let setup = t0.elapsed();

    let ip1 = lab.client_ip(Client::C1);
    let ip2 = lab.client_ip(Client::C2);
    for ip in [&ip1, &ip2] {
        check!(
            lab,
            ip.starts_with("192.0.2.") && ip.as_str() != harness::GW_V4,
            "leased address {ip}"
        );
    }
    check!(lab, ip1 != ip2, "both clients leased {ip1}");
    check_eq!(lab, lab.client_mac(Client::C1), Client::C1.default_mac());
    let lease = lab.client_lease(Client::C1);
    let option_114 = format!("default-url \"{}\";", harness::CAPTIVE_API_URL);
    check!(
        lab,
        lease.contains(&option_114),
        "no option 114 in the lease:\n{lease}"
    );

    let http = lab.http(Client::C1, &format!("http://{}/", harness::INET_V4));
    check_eq!(lab, http.status(), Some(200), "{http}");
    check!(lab, http.body().contains(harness::INET_BODY), "{http}");
    let http = lab.http(Client::C2, &format!("http://{}:8080/", harness::INET_V4));
    check_eq!(lab, http.status(), Some(200), "{http}");
    let http6 = lab.http(Client::C1, &format!("http://[{}]/", harness::INET_V6));
    check_eq!(lab, http6.status(), Some(200), "{http6}");
    let tcp6 = lab.tcp(Client::C2, harness::INET_V6, 8080, 1.0);
    check_eq!(lab, tcp6.result(), "connected", "{tcp6}");
    let tls = lab.tcp(Client::C1, harness::INET_V4, 443, 1.0);
    check_eq!(lab, tls.result(), "connected", "{tls}");

    // The gateway's DNS, asked over IPv4 and over IPv6.
    for (c, server) in [(Client::C1, harness::GW_V4), (Client::C2, harness::GW_V6)] {
        let dns = lab.dns(c, harness::INET_NAME, server);
        check_eq!(
            lab,
            dns.a_records(),
            vec![harness::INET_V4.to_string()],
            "{dns}"
        );
    }

    let udp = lab.udp(Client::C1, harness::INET_V4, 9999, 1.0);
    check_eq!(lab, udp.result(), "reply", "{udp}");
    let udp6 = lab.udp(Client::C2, harness::INET_V6, 9999, 1.0);
    check_eq!(lab, udp6.result(), "reply", "{udp6}");

    // The gateway has no firewall yet.
    let ruleset = lab.nft_ruleset();
    check!(
        lab,
        ruleset.trim().is_empty(),
        "nft ruleset before storegate:\n{ruleset}"
    );

    // A phone with another (randomised) MAC, running busybox udhcpc, gets
    // another lease, and dnsmasq sees the hostname it sent.
    lab.set_mac(Client::C2, "02:00:5e:00:53:99");
    let opts = DhcpOptions {
        hostname: Some("phone-two".into()),
        vendor_class: Some("android-dhcp-14".into()),
    };
    lab.dhcp_with(Client::C2, DhcpClient::Udhcpc, &opts);
    let leases = lab.dnsmasq_leases();
    check!(
        lab,
        leases.contains("02:00:5e:00:53:99") && leases.contains("phone-two"),
        "dnsmasq leases:\n{leases}"
    );
    check_eq!(lab, lab.client_mac(Client::C2), "02:00:5e:00:53:99");
    let ip2b = lab.client_ip(Client::C2);
    check!(lab, ip2b != ip1, "new phone got c1's address {ip2b}");

    let probes = t0.elapsed() - setup;
    let t1 = Instant::now();
    drop(lab);
    harness::say(&format!(
        "lab_smoke: setup {setup:?}, probes {probes:?}, teardown {:?}",
        t1.elapsed()
    ));
}
