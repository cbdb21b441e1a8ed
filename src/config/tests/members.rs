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
