use super::*;

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
fn secrets_are_masked_in_debug() {
    let c = Config::parse(&format!(
        "{MINIMAL}\n[hq]\nurl = \"https://hq.example.com/sg/\"\nsecret = \"whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=\"\n"
    ))
    .unwrap();
    let hq = c.hq.unwrap();
    assert_eq!(hq.url, "https://hq.example.com/sg");
    let shown = format!("{hq:?}");
    assert!(!shown.contains("c2VjcmV0"), "{shown}");
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
fn presence_resident_thresholds_are_checked() {
    let c = Config::parse(MINIMAL).unwrap();
    assert_eq!(c.presence.resident_min_daily, Duration::from_secs(6 * 3600));
    assert_eq!(c.presence.resident_min_days, 3);
    assert_eq!(
        err(&format!("{MINIMAL}\n[presence]\nresident_min_days = 8\n")).key,
        "presence.resident_min_days"
    );
    assert_eq!(
        err(&format!(
            "{MINIMAL}\n[presence]\nresident_min_daily = \"x\"\n"
        ))
        .key,
        "presence.resident_min_daily"
    );
}

const HQ: &str =
    "[hq]\nurl = \"https://hq.example.com/sg\"\nsecret = \"whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=\"\n";

#[test]
fn hq_defaults_have_no_client_certificate_and_5s_10s_timeouts() {
    let hq = Config::parse(&format!("{MINIMAL}\n{HQ}"))
        .unwrap()
        .hq
        .unwrap();
    assert!(hq.client_cert.is_none());
    assert_eq!(hq.connect_timeout, Duration::from_secs(5));
    assert_eq!(hq.timeout, Duration::from_secs(10));
}

#[test]
fn hq_client_cert_and_key_go_together() {
    let hq = Config::parse(&format!(
        "{MINIMAL}\n{HQ}client_cert = \"/etc/sg/client.pem\"\nclient_key = \"/etc/sg/client-key.pem\"\n"
    ))
    .unwrap()
    .hq
    .unwrap();
    let cc = hq.client_cert.as_ref().expect("client_cert set");
    assert_eq!(cc.cert, PathBuf::from("/etc/sg/client.pem"));
    assert_eq!(cc.key, PathBuf::from("/etc/sg/client-key.pem"));
    let shown = format!("{hq:?}");
    assert!(shown.contains("client.pem"), "{shown}");

    // One without the other names the missing key and mentions both.
    let e = err(&format!(
        "{MINIMAL}\n{HQ}client_cert = \"/etc/sg/client.pem\"\n"
    ));
    assert_eq!(e.key, "hq.client_key", "{e}");
    assert!(e.problem.contains("hq.client_cert"), "{e}");
    let e = err(&format!(
        "{MINIMAL}\n{HQ}client_key = \"/etc/sg/client-key.pem\"\n"
    ));
    assert_eq!(e.key, "hq.client_cert", "{e}");
    assert!(e.problem.contains("hq.client_key"), "{e}");

    // Empty paths are refused, naming the key.
    let e = err(&format!(
        "{MINIMAL}\n{HQ}client_cert = \" \"\nclient_key = \"/k.pem\"\n"
    ));
    assert_eq!(e.key, "hq.client_cert", "{e}");
    let e = err(&format!(
        "{MINIMAL}\n{HQ}client_cert = \"/c.pem\"\nclient_key = \"\"\n"
    ));
    assert_eq!(e.key, "hq.client_key", "{e}");
}

#[test]
fn hq_timeouts_are_durations_within_bounds() {
    let hq = Config::parse(&format!(
        "{MINIMAL}\n{HQ}connect_timeout = \"250ms\"\ntimeout = \"1m30s\"\n"
    ))
    .unwrap()
    .hq
    .unwrap();
    assert_eq!(hq.connect_timeout, Duration::from_millis(250));
    assert_eq!(hq.timeout, Duration::from_secs(90));

    for (key, value) in [
        ("connect_timeout", "5"),
        ("connect_timeout", "0s"),
        ("connect_timeout", "50ms"),
        ("timeout", "soon"),
        ("timeout", "0ms"),
        ("timeout", "11m"),
    ] {
        let e = err(&format!("{MINIMAL}\n{HQ}{key} = \"{value}\"\n"));
        assert_eq!(e.key, format!("hq.{key}"), "{key} = {value:?}: {e}");
    }
    // The whole-request limit covers connecting, so it cannot be shorter.
    let e = err(&format!(
        "{MINIMAL}\n{HQ}connect_timeout = \"20s\"\ntimeout = \"10s\"\n"
    ));
    assert_eq!(e.key, "hq.connect_timeout", "{e}");
    assert!(e.problem.contains("hq.timeout"), "{e}");
    // A number is not a duration string.
    let e = err(&format!("{MINIMAL}\n{HQ}timeout = 10\n"));
    assert_eq!(e.key, "hq.timeout", "{e}");
}

#[test]
fn hq_sync_interval_defaults_to_5m_and_is_bounded() {
    let hq = Config::parse(&format!("{MINIMAL}\n{HQ}"))
        .unwrap()
        .hq
        .unwrap();
    assert_eq!(hq.sync_interval, Duration::from_secs(300));
    let hq = Config::parse(&format!("{MINIMAL}\n{HQ}sync_interval = \"90s\"\n"))
        .unwrap()
        .hq
        .unwrap();
    assert_eq!(hq.sync_interval, Duration::from_secs(90));
    assert!(format!("{hq:?}").contains("sync_interval"));
    for value in ["\"5s\"", "\"2d\"", "\"often\"", "300"] {
        let e = err(&format!("{MINIMAL}\n{HQ}sync_interval = {value}\n"));
        assert_eq!(e.key, "hq.sync_interval", "{value}: {e}");
    }
}

#[test]
fn members_keys_are_read_and_checked() {
    let c = Config::parse(&format!(
        "{MINIMAL}\n[members]\nmax_devices = 3\ndefault_country_code = \"44\"\notp_ttl = \"2m\"\n\
         otp_max_attempts = 3\notp_lockout = \"1h\"\nmember_number_digits = \"10\"\n\
         member_number_check = \"luhn\"\nconsent_version = \"2024-06.b\"\n\
         [privacy]\nforget_unbound_after_days = 7\n"
    ))
    .unwrap();
    assert_eq!(c.members.max_devices, 3);
    assert_eq!(c.members.default_country_code, "44");
    assert_eq!(c.members.otp_ttl, Duration::from_secs(120));
    assert_eq!(c.members.otp_max_attempts, 3);
    assert_eq!(c.members.otp_lockout, Duration::from_secs(3600));
    assert_eq!(c.members.member_number_digits, (10, 10));
    assert_eq!(c.members.member_number_check, MemberNumberCheck::Luhn);
    assert_eq!(c.members.consent_version, "2024-06.b");
    assert_eq!(c.privacy.forget_unbound_after_days, 7);
    let ok = |members: &str| Config::parse(&format!("{MINIMAL}\n[members]\n{members}\n"));
    assert_eq!(
        ok("member_number_digits = \" 8 - 12 \"")
            .unwrap()
            .members
            .member_number_digits,
        (8, 12)
    );
    for (bad, key) in [
        ("max_devices = 0", "members.max_devices"),
        ("max_devices = 17", "members.max_devices"),
        (
            "default_country_code = \"+86\"",
            "members.default_country_code",
        ),
        (
            "default_country_code = \"0\"",
            "members.default_country_code",
        ),
        (
            "default_country_code = \"1234\"",
            "members.default_country_code",
        ),
        (
            "default_country_code = \"\"",
            "members.default_country_code",
        ),
        ("otp_ttl = \"10s\"", "members.otp_ttl"),
        ("otp_ttl = \"2h\"", "members.otp_ttl"),
        ("otp_ttl = \"soon\"", "members.otp_ttl"),
        ("otp_max_attempts = 0", "members.otp_max_attempts"),
        ("otp_max_attempts = 21", "members.otp_max_attempts"),
        ("otp_lockout = \"0s\"", "members.otp_lockout"),
        ("otp_lockout = \"25h\"", "members.otp_lockout"),
        (
            "member_number_digits = \"12-8\"",
            "members.member_number_digits",
        ),
        (
            "member_number_digits = \"0-8\"",
            "members.member_number_digits",
        ),
        (
            "member_number_digits = \"8-33\"",
            "members.member_number_digits",
        ),
        (
            "member_number_digits = \"eight\"",
            "members.member_number_digits",
        ),
        (
            "member_number_digits = \"-\"",
            "members.member_number_digits",
        ),
        (
            "member_number_digits = \"1\"\nmember_number_check = \"luhn\"",
            "members.member_number_digits",
        ),
        (
            "member_number_check = \"mod97\"",
            "members.member_number_check",
        ),
        ("consent_version = \"\"", "members.consent_version"),
        ("consent_version = \"v 1\"", "members.consent_version"),
        ("bogus = 1", "members.bogus"),
    ] {
        let e = ok(bad).expect_err(bad);
        assert_eq!(e.key, key, "{bad}: {e}");
    }
    for days in ["0", "3651"] {
        let e = err(&format!(
            "{MINIMAL}\n[privacy]\nforget_unbound_after_days = {days}\n"
        ));
        assert_eq!(e.key, "privacy.forget_unbound_after_days");
    }
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
