//! `[members]` and `[privacy]`: every key read, every bound checked.

use std::time::Duration;

use super::*;

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
fn abuse_limits_default_to_the_store_country_and_distrust_member_numbers() {
    let c = Config::parse(MINIMAL).unwrap();
    assert_eq!(c.members.otp_countries, vec!["86".to_string()]);
    assert_eq!(c.members.otp_per_hour, 200);
    assert_eq!(c.members.otp_per_prefix_per_hour, 10);
    assert!(!c.members.member_number_trusted);
    assert_eq!(c.members.member_number_per_hour, 100);
    assert_eq!(c.members.max_members, 20_000);
    // Texts go to the store's own country unless told otherwise.
    let uk = Config::parse(&format!(
        "{MINIMAL}\n[members]\ndefault_country_code = \"44\"\n"
    ))
    .unwrap();
    assert_eq!(uk.members.otp_countries, vec!["44".to_string()]);
}

#[test]
fn abuse_limits_are_read_and_checked() {
    let ok = |members: &str| Config::parse(&format!("{MINIMAL}\n[members]\n{members}\n"));
    let c = ok("otp_countries = [\"86\", \"852\"]\notp_per_hour = 50\n\
                otp_per_prefix_per_hour = 3\nmember_number_trusted = true\n\
                member_number_per_hour = 20\nmax_members = 500")
    .unwrap()
    .members;
    assert_eq!(c.otp_countries, vec!["86".to_string(), "852".to_string()]);
    assert_eq!(c.otp_per_hour, 50);
    assert_eq!(c.otp_per_prefix_per_hour, 3);
    assert!(c.member_number_trusted);
    assert_eq!(c.member_number_per_hour, 20);
    assert_eq!(c.max_members, 500);
    for (bad, key) in [
        ("otp_countries = []", "members.otp_countries"),
        ("otp_countries = [\"+86\"]", "members.otp_countries"),
        ("otp_countries = [\"0\"]", "members.otp_countries"),
        ("otp_countries = [\"1234\"]", "members.otp_countries"),
        ("otp_countries = [\"1\"]", "members.otp_countries"),
        ("otp_countries = \"86\"", "members"),
        ("otp_per_hour = 0", "members.otp_per_hour"),
        ("otp_per_hour = 1001", "members.otp_per_hour"),
        (
            "otp_per_prefix_per_hour = 0",
            "members.otp_per_prefix_per_hour",
        ),
        (
            "member_number_per_hour = 0",
            "members.member_number_per_hour",
        ),
        ("max_members = 0", "members.max_members"),
        ("max_members = 1000001", "members.max_members"),
        ("member_number_trusted = \"yes\"", "members"),
    ] {
        let e = ok(bad).expect_err(bad);
        assert!(e.key.starts_with(key), "{bad}: {e}");
    }
    let many: Vec<String> = (1..=17).map(|n| format!("\"{n}\"")).collect();
    let e = ok(&format!("otp_countries = [{}]", many.join(", "))).unwrap_err();
    assert_eq!(e.key, "members.otp_countries");
}
