use super::*;

const SAMPLE: &str = r#"
# storegate on a store router
package storegate

config service 'service'
	option enabled '1'

config store 'store'
	option id 'wulin-01'
	option name "Wulin \"Central\" Store"   # a comment after a value
	option timezone Asia/Shanghai

config lan 'lan'
	option interface 'br-guest'

config portal 'portal'
	option listen '0.0.0.0:2050'
	option session_timeout '4h'
	list walled_garden '203.0.113.10'
	list walled_garden '2001:db8::/48'
	option max_connections '512'

config presence 'presence'
	option staff_devices '02:00:00:00:00:01 02:00:00:00:00:02'

config storage 'storage'
	option path '/var/lib/storegate'

config hq 'hq'
	option url 'https://hq.example.com/storegate'
	option secret_file '/etc/storegate/hq.secret'
	option gzip '0'
	option ca_file ''
"#;

#[test]
fn tokenizer_handles_quotes_escapes_and_comments() {
    let t = |s: &str| tokenize(s, 1).unwrap();
    assert_eq!(t("option a 'b c'"), ["option", "a", "b c"]);
    assert_eq!(
        t(r#"option a "b \"c\" \\ d""#),
        ["option", "a", r#"b "c" \ d"#]
    );
    assert_eq!(t(r"option a 'it'\''s'"), ["option", "a", "it's"]);
    assert_eq!(t("option a 'x # y' # comment"), ["option", "a", "x # y"]);
    assert_eq!(t("  # only a comment"), Vec::<String>::new());
    assert_eq!(t("option a b#c"), ["option", "a", "b#c"]);
    assert_eq!(t("option a ''"), ["option", "a", ""]);
    assert_eq!(t("\toption\ta\t'1'\r"), ["option", "a", "1"]);
    assert_eq!(
        t(r"option a 'no $(escapes) or \n here'"),
        ["option", "a", r"no $(escapes) or \n here"]
    );
}

#[test]
fn tokenizer_errors_name_the_line() {
    assert_eq!(
        tokenize("option a 'open", 7).unwrap_err().to_string(),
        "line 7: unterminated single quote"
    );
    assert!(
        tokenize("option a \"open", 3)
            .unwrap_err()
            .to_string()
            .starts_with("line 3:")
    );
    assert!(
        tokenize("option a b\\", 4)
            .unwrap_err()
            .problem
            .contains("backslash at the end")
    );
}

#[test]
fn parses_sections_options_and_lists() {
    let f = parse(SAMPLE).unwrap();
    assert_eq!(f.package.as_deref(), Some("storegate"));
    let kinds: Vec<&str> = f.sections.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "service", "store", "lan", "portal", "presence", "storage", "hq"
        ]
    );
    let store = &f.sections[1];
    assert_eq!(store.name.as_deref(), Some("store"));
    assert_eq!(store.line, 8);
    assert_eq!(
        store.option("name").unwrap().value,
        UciValue::Single("Wulin \"Central\" Store".into())
    );
    assert_eq!(
        store.option("timezone").unwrap().value,
        UciValue::Single("Asia/Shanghai".into())
    );
    let portal = &f.sections[3];
    let wg = portal.option("walled_garden").unwrap();
    assert_eq!(
        wg.value,
        UciValue::List(vec!["203.0.113.10".into(), "2001:db8::/48".into()])
    );
    assert_eq!(wg.line, 19);
}

#[test]
fn anonymous_sections_are_fine() {
    let f = parse("config store\n\toption id 'x'\n").unwrap();
    assert_eq!(f.sections[0].name, None);
}

#[test]
fn bad_lines_are_errors_with_line_numbers() {
    let cases: &[(&str, &str)] = &[
        (
            "option id 'x'\n",
            "line 1: option before any config section",
        ),
        (
            "config store\n\toption id\n",
            "line 2: expected: option NAME 'VALUE' (quote values with spaces)",
        ),
        (
            "config store\n\toption id wulin 01\n",
            "line 2: expected: option NAME 'VALUE' (quote values with spaces)",
        ),
        (
            "config store\n\tset id 'x'\n",
            "line 2: unknown keyword 'set'; expected config, option, list or package",
        ),
        (
            "config store\n\toption id 'a'\n\toption id 'b'\n",
            "line 3: 'id' is already set on line 2 of this section",
        ),
        (
            "config portal\n\tlist walled_garden 'a'\n\toption walled_garden 'b'\n",
            "line 3: 'walled_garden' is already set on line 2 of this section",
        ),
        (
            "config 'store x'\n",
            "line 1: bad section type 'store x' (letters, digits, _ and -)",
        ),
        (
            "config store 'a.b'\n",
            "line 1: bad section name 'a.b' (letters, digits and _)",
        ),
        (
            "config store\n\toption 'a-b' 'x'\n",
            "line 2: bad option name 'a-b' (letters, digits and _)",
        ),
        (
            "config store\npackage storegate\n",
            "line 2: package must come first, and only once",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(parse(text).unwrap_err().to_string(), *want, "for {text:?}");
    }
}

#[test]
fn sample_translates_to_valid_toml() {
    // Validation reads the files the config names, as `run` would: the
    // sample's secret file has to exist.
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("hq.secret");
    std::fs::write(&secret_file, "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=\n").unwrap();
    let sample = SAMPLE.replace("/etc/storegate/hq.secret", secret_file.to_str().unwrap());
    let toml_text = to_toml(&sample).unwrap();
    let config = Config::parse(&toml_text).unwrap();
    assert_eq!(config.store.id, "wulin-01");
    assert_eq!(config.store.name, "Wulin \"Central\" Store");
    assert_eq!(config.lan.interface, "br-guest");
    assert_eq!(config.portal.session_timeout.as_secs(), 4 * 3600);
    assert_eq!(config.portal.walled_garden.len(), 2);
    assert_eq!(config.portal.max_connections, 512);
    assert_eq!(config.presence.staff_devices.len(), 2);
    let hq = config.hq.expect("hq");
    assert!(!hq.gzip);
    // `option ca_file ''` leaves the key unset.
    assert!(hq.ca_file.is_none());
    assert_eq!(hq.secret.file(), Some(secret_file.as_path()));
    assert!(
        !toml_text.contains("enabled"),
        "service section leaked:\n{toml_text}"
    );
}

#[test]
fn values_are_quoted_by_toml_not_spliced() {
    // A name full of TOML syntax stays one string value.
    let text = "config store\n\toption id 'x'\n\toption name \"a\\\" = 1 [hq] \\\\ it's\"\nconfig lan\n\toption interface 'br-lan'\nconfig storage\n\toption path '/tmp/s'\n";
    let toml_text = to_toml(text).unwrap();
    let config = Config::parse(&toml_text).unwrap();
    assert_eq!(config.store.name, "a\" = 1 [hq] \\ it's");
    assert!(config.hq.is_none());
}

fn err(text: &str) -> String {
    to_toml(text).unwrap_err().to_string()
}

const BASE: &str = "config store 'store'\n\toption id 'wulin-01'\nconfig lan 'lan'\n\toption interface 'br-lan'\nconfig storage 'storage'\n\toption path '/var/lib/storegate'\n";

#[test]
fn unknown_section_is_an_error() {
    let e = err(&format!("{BASE}config captive 'x'\n\toption a 'b'\n"));
    assert_eq!(
        e,
        "section 'x' (config captive, line 7): unknown section type 'captive'; expected one of store, lan, portal, firewall, presence, members, members_wifi, privacy, storage, hq, dashboard, control, service"
    );
}

#[test]
fn validation_errors_name_the_uci_option() {
    let e = err(&format!(
        "{BASE}config portal 'portal'\n\toption session_timeout 'forever'\n"
    ));
    assert!(
        e.starts_with(
            "section 'portal' (config portal, line 7), option 'session_timeout' (line 8): "
        ),
        "{e}"
    );
    assert!(!e.contains("(line 1"), "TOML line leaked: {e}");

    let e = err(&format!(
        "{BASE}config portal 'portal'\n\toption bogus '1'\n"
    ));
    assert!(
        e.starts_with(
            "section 'portal' (config portal, line 7), option 'bogus' (line 8): unknown key"
        ),
        "{e}"
    );

    let e = err(&format!(
        "{BASE}config portal\n\toption max_connections 'lots'\n"
    ));
    assert_eq!(
        e,
        "section config portal (line 7), option 'max_connections' (line 8): expected a whole number, got 'lots'"
    );

    let e = err(&format!(
        "{BASE}config hq\n\toption url 'https://hq'\n\toption gzip 'maybe'\n"
    ));
    assert!(
        e.ends_with("option 'gzip' (line 9): expected 0 or 1, got 'maybe'"),
        "{e}"
    );

    let e = err(&format!("{BASE}config store\n"));
    assert!(
        e.contains("config store appears twice (first on line 1)"),
        "{e}"
    );

    let e = err(&format!("{BASE}config firewall\n\tlist backend 'none'\n"));
    assert!(
        e.ends_with("takes one value: write it as `option`, not `list`"),
        "{e}"
    );
}

#[test]
fn missing_required_things_are_named() {
    let e = err("config store\n\toption id 'x'\nconfig lan\n\toption interface 'br-lan'\n");
    assert_eq!(e, "file: missing section: config storage 'storage'");
    let e = err(
        "config store\nconfig lan\n\toption interface 'br-lan'\nconfig storage\n\toption path '/x'\n",
    );
    assert!(e.starts_with("section config store (line 1)"), "{e}");
    assert!(e.contains("id"), "{e}");
    let e = err("package network\nconfig store\n");
    assert_eq!(
        e,
        "line 1: this is the 'network' package; expected storegate"
    );
}

#[test]
fn bad_store_id_points_at_its_option() {
    let e = err(
        "config store\n\toption id 'Not Valid'\nconfig lan\n\toption interface 'br-lan'\nconfig storage\n\toption path '/x'\n",
    );
    assert!(
        e.starts_with("section config store (line 1), option 'id' (line 2): "),
        "{e}"
    );
}

/// Every section and every non-string key of the documented example
/// config is known here, so the UCI route can express the whole file.
#[test]
fn schema_covers_the_example_config() {
    let text = include_str!("../../../firmware/storegate.example.toml");
    // The example leaves [hq] commented out; uncomment its keys.
    let text: String = text
        .lines()
        .map(|l| {
            let t = l.trim_start();
            if t.starts_with("# [hq]")
                || t.starts_with("# [members.wifi]")
                || (t.starts_with("# ")
                    && t[2..].split(' ').nth(1) == Some("=")
                    && !t[2..].starts_with('['))
            {
                t[2..].to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let value: toml::Table = toml::from_str(&text).expect("example parses");
    // UCI has no nesting: [members.wifi] is `config members_wifi`.
    let mut flat = Vec::new();
    for (section, table) in &value {
        let toml::Value::Table(table) = table else {
            panic!("{section} is not a table")
        };
        let mut keys = toml::Table::new();
        for (key, v) in table {
            match v {
                toml::Value::Table(inner) => flat.push((
                    format!("{section}_{key}"),
                    toml::Value::Table(inner.clone()),
                )),
                v => {
                    keys.insert(key.clone(), v.clone());
                }
            }
        }
        flat.push((section.clone(), toml::Value::Table(keys)));
    }
    for (section, table) in &flat {
        let section = section.as_str();
        assert!(
            SECTIONS.contains(&section),
            "section [{section}] of the example is not in uci::SECTIONS"
        );
        let toml::Value::Table(table) = table else {
            panic!("{section} is not a table")
        };
        for (key, v) in table {
            let want = match v {
                toml::Value::String(_) => Kind::Str,
                toml::Value::Integer(_) => Kind::Int,
                toml::Value::Boolean(_) => Kind::Bool,
                toml::Value::Array(_) => Kind::List,
                other => panic!("{section}.{key}: unexpected {other:?}"),
            };
            assert_eq!(
                kind_of(section, key),
                want,
                "{section}.{key}: add it to uci::TYPED_KEYS"
            );
        }
    }
    assert!(
        value.contains_key("hq"),
        "the [hq] keys were not uncommented"
    );
}

#[test]
fn strip_toml_line_only_strips_line_numbers() {
    assert_eq!(strip_toml_line("bad value (line 12)"), "bad value");
    assert_eq!(
        strip_toml_line("bad (line 3); expected x"),
        "bad; expected x"
    );
    assert_eq!(strip_toml_line("a (linear) b"), "a (linear) b");
}

#[test]
fn members_wifi_section_becomes_the_nested_table() {
    let text = format!(
        "{BASE}\nconfig members_wifi 'members_wifi'\n\toption ssid 'Store Members'\n\
         \toption psk_file '/var/run/storegate/members.psk'\n\
         \tlist hostapd_ctrl '/var/run/hostapd/wlan0-1'\n\
         \tlist hostapd_ctrl '/var/run/hostapd/wlan1-1'\n\toption allow_member_number '1'\n"
    );
    let toml_text = to_toml(&text).unwrap();
    assert!(toml_text.contains("\n[members.wifi]\n"), "{toml_text}");
    let c = Config::parse(&toml_text).unwrap();
    let w = c.members.wifi.unwrap();
    assert_eq!(w.ssid, "Store Members");
    assert_eq!(w.hostapd_ctrl.len(), 2);
    assert!(w.allow_member_number);
    // Errors point at the UCI section and option.
    let bad = format!(
        "{BASE}\nconfig members_wifi\n\toption ssid '{}'\n\toption psk_file '/x'\n\
         \tlist hostapd_ctrl '/y'\n",
        "x".repeat(33)
    );
    let e = err(&bad);
    assert!(
        e.contains("config members_wifi") && e.contains("option 'ssid'"),
        "{e}"
    );
}
