use super::*;

fn guess(prl: &[u8], vendor: Option<&str>, host: Option<&str>) -> String {
    let t = DhcpTraits {
        prl,
        vendor_class: vendor,
        hostname: host,
    };
    os_family(&[], &builtin_rules(), &t).to_owned()
}

#[test]
fn apple_phones_and_macs() {
    let modern = [1, 121, 3, 6, 15, 108, 114, 119, 252, 95, 44, 46];
    assert_eq!(guess(&modern, None, None), "ios");
    assert_eq!(guess(&modern, None, Some("Lis-iPad")), "ios");
    assert_eq!(guess(&modern, None, Some("Lis-MacBook-Air")), "macos");
    assert_eq!(guess(&[1, 3, 6, 15, 119, 252], None, Some("iPhone")), "ios");
    assert_eq!(
        guess(&[1, 121, 3, 6, 15, 119, 252, 95, 44, 46], None, None),
        "macos"
    );
}

#[test]
fn android_by_vendor_class_or_list() {
    assert_eq!(
        guess(
            &[1, 3, 6, 15, 26, 28, 51, 58, 59, 43],
            Some("android-dhcp-14"),
            None
        ),
        "android"
    );
    assert_eq!(
        guess(&[1, 3, 6, 15, 26, 28, 51, 58, 59, 43, 114, 108], None, None),
        "android"
    );
    // Android 9 and older: dhcpcd, told apart by its host name.
    assert_eq!(
        guess(&[1, 33, 3, 6], Some("dhcpcd-5.5.6"), Some("android-1f2e3d")),
        "android"
    );
}

#[test]
fn windows_chromeos_and_unknown() {
    assert_eq!(guess(&[1, 3, 6], Some("MSFT 5.0"), None), "windows");
    assert_eq!(
        guess(
            &[1, 3, 6, 15, 31, 33, 43, 44, 46, 47, 119, 121, 249, 252],
            None,
            None
        ),
        "windows"
    );
    assert_eq!(guess(&[1, 3, 6, 15], Some("chromeos"), None), "chromeos");
    assert_eq!(guess(&[1, 3, 6, 15], None, None), UNKNOWN);
    assert_eq!(guess(&[], None, None), UNKNOWN);
}

/// What the three Linux clients on a Debian 12 box really sent (see the
/// module docs for how this was measured).
#[test]
fn linux_clients_as_measured() {
    let dhclient = [1, 28, 2, 3, 15, 6, 119, 12, 44, 47, 26, 121, 42];
    assert_eq!(guess(&dhclient, None, Some("vm")), "linux");
    // Another Debian-family dhclient config: same head, other tail.
    assert_eq!(
        guess(&[1, 28, 2, 3, 15, 6, 119, 12, 44, 47, 26], None, None),
        "linux"
    );
    let udhcpc = [1, 3, 6, 12, 15, 28, 42];
    assert_eq!(guess(&udhcpc, Some("udhcp 1.35.0"), None), "linux");
    assert_eq!(guess(&udhcpc, None, None), "linux");
    let dhcpcd_debian = [1, 121, 3, 6, 12, 15, 26, 28, 33, 51, 54, 58, 59, 119];
    assert_eq!(guess(&dhcpcd_debian, None, None), "linux");
    let dhcpcd_bare = [1, 3, 28, 33, 51, 58, 59];
    assert_eq!(
        guess(
            &dhcpcd_bare,
            Some("dhcpcd-9.4.1:Linux-6.1.0:x86_64:GenuineIntel"),
            None
        ),
        "linux"
    );
}

#[test]
fn a_store_file_overrides_the_builtin_table() {
    let rules = parse_fingerprint_file(
        r#"
        [[rule]]
        os_family = "kiosk"
        vendor_class_prefix = "UDHCP "
        hostname_contains = "till"

        [[rule]]
        os_family = "harmonyos"
        prl = [1, 3, 6, 15, 26, 28, 51, 58, 59, 43]
        "#,
    )
    .unwrap();
    assert_eq!(rules.len(), 2);
    let builtin = builtin_rules();
    let android_list = [1, 3, 6, 15, 26, 28, 51, 58, 59, 43];
    let t = DhcpTraits {
        prl: &android_list,
        vendor_class: None,
        hostname: None,
    };
    assert_eq!(os_family(&rules, &builtin, &t), "harmonyos");
    assert_eq!(os_family(&[], &builtin, &t), "android");
    let till = DhcpTraits {
        prl: &[1, 3, 6, 12, 15, 28, 42],
        vendor_class: Some("udhcp 1.36.1"),
        hostname: Some("Till-03"),
    };
    assert_eq!(os_family(&rules, &builtin, &till), "kiosk");
    let other = DhcpTraits {
        hostname: Some("printer"),
        ..till
    };
    assert_eq!(os_family(&rules, &builtin, &other), "linux");
}

#[test]
fn file_errors_name_the_rule() {
    let err = |text: &str| parse_fingerprint_file(text).unwrap_err();
    let ok = "[[rule]]\nos_family = \"ios\"\nprl = [1]\n";
    assert!(err(&format!("{ok}[[rule]]\nos_family = \"x\"\n")).starts_with("rule[1]"));
    assert!(
        err(&format!(
            "{ok}[[rule]]\nos_family = \"Bad Name\"\nprl = [1]\n"
        ))
        .starts_with("rule[1].os_family")
    );
    assert!(
        err(&format!("{ok}[[rule]]\nos_family = \"x\"\nprl = [300]\n")).starts_with("rule[1].prl")
    );
    assert!(err(&format!("{ok}[[rule]]\nos_family = \"x\"\nprll = [3]\n")).starts_with("rule[1]"));
    assert!(err("[[rule]]\nos_family = \"x\"\nprl = []\n").starts_with("rule[0].prl"));
    assert!(err("rule = 3").starts_with("rule"));
    assert!(parse_fingerprint_file("").unwrap().is_empty());
}
