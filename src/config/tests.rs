//! Whole-file behaviour (defaults, unknown keys, the shipped examples) and
//! the smaller sections; the larger ones have their own files here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

mod hq;
mod members;
mod presence;
mod wifi;

const MINIMAL: &str = r#"
[store]
id = "wulin-01"
[lan]
interface = "br-lan"
[storage]
path = "/var/lib/storegate"
"#;

fn err(text: &str) -> ConfigError {
    Config::parse(text).expect_err("config should be refused")
}

#[test]
fn minimal_config_gets_documented_defaults() {
    let c = Config::parse(MINIMAL).unwrap();
    assert_eq!(c.store.name, "wulin-01");
    assert_eq!(c.portal.listen, "0.0.0.0:2050".parse().unwrap());
    assert_eq!(c.portal.session_timeout, Duration::from_secs(8 * 3600));
    assert_eq!(c.portal.idle_timeout, Duration::from_secs(30 * 60));
    assert_eq!(c.firewall, FirewallBackend::Nftables);
    assert_eq!(c.presence.rejoin_gap, Duration::from_secs(300));
    assert_eq!(c.members, MembersConfig::default());
    assert_eq!(c.members.remember_days, 180);
    assert_eq!(c.members.max_devices, 1);
    assert_eq!(c.members.default_country_code, "86");
    assert_eq!(c.members.otp_ttl, Duration::from_secs(300));
    assert_eq!(c.members.otp_max_attempts, 5);
    assert_eq!(c.members.otp_lockout, Duration::from_secs(900));
    assert_eq!(c.members.member_number_digits, (6, 16));
    assert_eq!(c.members.member_number_check, MemberNumberCheck::None);
    assert_eq!(c.members.consent_version, "1");
    assert_eq!(c.privacy.forget_unbound_after_days, 30);
    assert!(c.hq.is_none());
    assert_eq!(
        c.control.socket,
        PathBuf::from("/run/storegate/control.sock")
    );
}

#[test]
fn every_shipped_config_parses() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seen = 0;
    for dir in ["firmware", "examples"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                Config::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                seen += 1;
            }
        }
    }
    assert!(
        seen >= 2,
        "expected the shipped example configs, found {seen}"
    );
}

#[test]
fn unknown_key_is_named_with_its_section() {
    let e = err(&format!("{MINIMAL}\n[portal]\nbogus = 1\n"));
    assert_eq!(e.key, "portal.bogus");
    assert!(e.problem.contains("unknown key"), "{e}");
    let e = err(&format!("{MINIMAL}\n[nonsense]\n"));
    assert_eq!(e.key, "nonsense");
}

#[test]
fn missing_required_section_is_named() {
    let e = err("[store]\nid = \"a\"\n[lan]\ninterface = \"x\"\n");
    assert!(e.problem.contains("storage"), "{e}");
}

#[test]
fn wrong_type_names_the_key() {
    let e = err(&format!("{MINIMAL}\n[portal]\nsession_timeout = 5\n"));
    assert_eq!(e.key, "portal.session_timeout");
}

#[test]
fn bad_values_name_their_key() {
    let cases = [
        (
            "[store]\nid = \"Wulin 01\"\n[lan]\ninterface = \"br-lan\"\n[storage]\npath = \"/x\"\n",
            "store.id",
        ),
        (
            "[store]\nid = \"a\"\n[lan]\ninterface = \"a/b\"\n[storage]\npath = \"/x\"\n",
            "lan.interface",
        ),
        (
            "[store]\nid = \"a\"\n[lan]\ninterface = \"eth0\"\n[storage]\npath = \"\"\n",
            "storage.path",
        ),
        (
            "[store]\nid = \"a\"\n[lan]\ninterface = \"eth0\"\n[storage]\npath = \"/x\"\noutbox_max_events = 9\n",
            "storage.outbox_max_events",
        ),
    ];
    for (text, key) in cases {
        assert_eq!(err(text).key, key, "{text}");
    }
    let with = |section: &str| format!("{MINIMAL}\n{section}\n");
    assert_eq!(
        err(&with("[portal]\nsession_timeout = \"8x\"")).key,
        "portal.session_timeout"
    );
    assert_eq!(
        err(&with("[portal]\nidle_timeout = \"0s\"")).key,
        "portal.idle_timeout"
    );
    assert_eq!(
        err(&with("[portal]\nlisten = \"nowhere\"")).key,
        "portal.listen"
    );
    assert_eq!(
        err(&with(
            "[portal]\nwalled_garden = [\"10.0.0.1\", \"example\"]"
        ))
        .key,
        "portal.walled_garden[1]"
    );
    assert_eq!(
        err(&with("[firewall]\nbackend = \"iptables\"")).key,
        "firewall.backend"
    );
    assert_eq!(
        err(&with("[presence]\nstaff_devices = [\"zz:00:00:00:00:00\"]")).key,
        "presence.staff_devices[0]"
    );
    assert_eq!(
        err(&with(
            "[presence]\nprobe_after = \"5m\"\nleave_after = \"1m\""
        ))
        .key,
        "presence.leave_after"
    );
    assert_eq!(
        err(&with("[members]\nremember_days = 0")).key,
        "members.remember_days"
    );
    assert_eq!(
        err(&with(
            "[hq]\nurl = \"http://hq.example.com\"\nsecret = \"whsec_aGVsbG8gd29ybGQgaGVsbG8=\""
        ))
        .key,
        "hq.url"
    );
    assert_eq!(
        err(&with(
            "[hq]\nurl = \"https://hq.example.com\"\nsecret = \"nope\""
        ))
        .key,
        "hq.secret"
    );
    assert_eq!(
        err(&with("[hq]\nurl = \"https://hq.example.com\"")).key,
        "hq.secret"
    );
}

#[test]
fn walled_garden_accepts_addresses_and_networks() {
    let c = Config::parse(&format!(
        "{MINIMAL}\n[portal]\nwalled_garden = [\"203.0.113.7\", \"198.51.100.9/24\", \"2001:db8::/48\"]\n"
    ))
    .unwrap();
    let shown: Vec<String> = c
        .portal
        .walled_garden
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(
        shown,
        ["203.0.113.7/32", "198.51.100.0/24", "2001:db8::/48"]
    );
}

#[test]
fn unknown_time_zones_are_refused() {
    let e = err(
        "[store]\nid = \"a\"\ntimezone = \"Mars/Olympus\"\n[lan]\ninterface = \"x\"\n[storage]\npath = \"/x\"\n",
    );
    assert_eq!(e.key, "store.timezone");
}

#[test]
fn language_tags() {
    assert_eq!(Language::from_tag("zh-TW"), Some(Language::ZhCn));
    assert_eq!(Language::from_tag("EN-us"), Some(Language::En));
    assert_eq!(Language::from_tag("fr"), None);
}

#[test]
fn dashboard_defaults_and_checks() {
    let c = Config::parse(MINIMAL).unwrap();
    assert_eq!(c.dashboard.listen, "0.0.0.0:8443".parse().unwrap());
    assert!(c.dashboard.tls.is_none());
    assert!(c.dashboard.password_file.is_none());
    assert!(
        !c.dashboard.metrics_public,
        "/metrics needs a session by default"
    );
    assert_eq!(c.dashboard.max_connections, 64);
    let with = |extra: &str| format!("{MINIMAL}[dashboard]\n{extra}\n");
    let c = Config::parse(&with(
        "cert_file = \"/c.pem\"\nkey_file = \"/k.pem\"\npassword_file = \"/p\"\nmetrics_public = true",
    ))
    .unwrap();
    assert_eq!(
        c.dashboard.tls,
        Some((PathBuf::from("/c.pem"), PathBuf::from("/k.pem")))
    );
    assert_eq!(c.dashboard.password_file, Some(PathBuf::from("/p")));
    assert!(c.dashboard.metrics_public);
    assert_eq!(
        err(&with("cert_file = \"/c.pem\"")).key,
        "dashboard.key_file"
    );
    assert_eq!(
        err(&with("key_file = \"/k.pem\"")).key,
        "dashboard.cert_file"
    );
    assert_eq!(
        err(&with("max_connections = 0")).key,
        "dashboard.max_connections"
    );
    assert_eq!(err(&with("listen = \"nope\"")).key, "dashboard.listen");
    let clash = err(&with("listen = \"0.0.0.0:2050\""));
    assert_eq!(clash.key, "dashboard.listen");
    assert!(clash.problem.contains("portal"), "{clash}");
    assert_eq!(
        err(&with("password_file = \"\"")).key,
        "dashboard.password_file"
    );
}

#[test]
fn the_time_zone_is_looked_up_once_and_kept() {
    let c = Config::parse(MINIMAL).unwrap();
    assert_eq!(c.store.timezone_name, "Asia/Shanghai");
    assert_eq!(c.store.timezone.iana_name(), Some("Asia/Shanghai"));

    let c = Config::parse(
        "[store]\nid = \"a\"\ntimezone = \"America/New_York\"\n[lan]\ninterface = \"x\"\n[storage]\npath = \"/x\"\n",
    )
    .unwrap();
    assert_eq!(c.store.timezone_name, "America/New_York");
    assert_eq!(c.store.timezone.iana_name(), Some("America/New_York"));
    // The zone itself, not only its name: UTC-5 in January, UTC-4 in July.
    let offset = |at: &str| {
        let t: jiff::Timestamp = at.parse().unwrap();
        c.store.timezone.to_offset(t).seconds()
    };
    assert_eq!(offset("2024-01-15T12:00:00Z"), -5 * 3600);
    assert_eq!(offset("2024-07-15T12:00:00Z"), -4 * 3600);
}

#[test]
fn the_portal_url_must_be_usable_in_redirects() {
    let with = |url: &str| format!("{MINIMAL}\n[portal]\nurl = \"{url}\"\n");
    let c = Config::parse(&with("http://portal.example.com:2050/")).unwrap();
    assert_eq!(
        c.portal.url.as_deref(),
        Some("http://portal.example.com:2050/")
    );
    for bad in [
        "portal.example.com",
        "http://",
        "http://portal example.com/",
        "http://portal.example.com/?a=1",
        "http://portal.example.com/#top",
    ] {
        assert_eq!(err(&with(bad)).key, "portal.url", "{bad}");
    }
}

#[test]
fn the_per_client_connection_cap_fits_inside_the_total() {
    let base = "[store]\nid = \"s\"\n[lan]\ninterface = \"br-lan\"\n[storage]\npath = \"/tmp/x\"\n";
    let ok = Config::parse(&format!(
        "{base}[portal]\nmax_connections = 64\nmax_connections_per_client = 64\n"
    ))
    .unwrap();
    assert_eq!(ok.portal.max_connections_per_client, 64);
    let default = Config::parse(base).unwrap();
    assert_eq!(default.portal.max_connections_per_client, 16);
    for bad in [0, 65] {
        let e = Config::parse(&format!(
            "{base}[portal]\nmax_connections = 64\nmax_connections_per_client = {bad}\n"
        ))
        .unwrap_err();
        assert_eq!(e.key, "portal.max_connections_per_client", "{e}");
    }
}
