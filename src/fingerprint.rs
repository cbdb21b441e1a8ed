//! OS fingerprints from what a DHCP client asks for.
//!
//! A client's parameter request list (option 55, in its own order) and
//! vendor class (option 60) say which DHCP client, and so which OS, sent
//! them. The answer is a guess: good enough to split footfall by phone
//! family and to label devices for the store manager, never a security
//! decision (all of it is client-chosen and trivially spoofed).
//!
//! Rules are checked in order and the first match wins: the store's own
//! rules (from a TOML file, see [`parse_fingerprint_file`]) before the
//! built-in table, so a store can correct or extend it.
//!
//! Where the built-in entries come from:
//! - Linux clients were measured on a Debian 12 box: dnsmasq
//!   `--log-dhcp` in a network namespace, each real client run against it.
//!   ISC dhclient 4.4.3-P1 with Debian's stock `dhclient.conf` asks for
//!   `1,28,2,3,15,6,119,12,44,47,26,121,42` and sends no option 60;
//!   busybox udhcpc 1.35.0 sends vendor class `udhcp 1.35.0` and asks for
//!   `1,3,6,12,15,28,42`; dhcpcd 9.4.1 with Debian's stock `dhcpcd.conf`
//!   sends *no* option 60 (that file has a bare `vendorclassid` line,
//!   which turns it off) and asks for
//!   `1,121,3,6,12,15,26,28,33,51,54,58,59,119`; without a config file it
//!   sends `dhcpcd-9.4.1:Linux-<kernel>:<machine>:<cpu>`.
//! - ChromeOS: shill starts dhcpcd with `-i chromeos` (ChromiumOS
//!   `shill/network/legacy_dhcpcd/legacy_dhcpcd_proxy.cc`).
//! - Android 10+ (the NetworkStack `DhcpClient`) sends
//!   `android-dhcp-<release>`; Windows since 2000 sends `MSFT 5.0`.
//! - Apple, Android and Windows request lists are the commonly published
//!   ones (fingerbank-style collections), not measured here. Modern iOS
//!   and macOS send the same list; a store sees far more phones than
//!   laptops, so that list means `ios` unless the host name says "Mac".

use serde::Deserialize;

/// One fingerprint rule: every condition given must hold (at least one
/// must be given). String comparisons ignore ASCII case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FingerprintRule {
    /// What a match means, e.g. `"ios"`: `[a-z0-9_-]{1,32}`.
    pub os_family: String,
    /// Option 55 exactly, in order.
    pub prl: Option<Vec<u8>>,
    /// Option 55 starts with these, in order.
    pub prl_prefix: Option<Vec<u8>>,
    /// Option 60 starts with this.
    pub vendor_class_prefix: Option<String>,
    /// Option 60 contains this.
    pub vendor_class_contains: Option<String>,
    /// The host name (option 12) contains this.
    pub hostname_contains: Option<String>,
}

/// What the device told us, as the rules see it.
#[derive(Debug, Clone, Copy, Default)]
pub struct DhcpTraits<'a> {
    pub prl: &'a [u8],
    pub vendor_class: Option<&'a str>,
    pub hostname: Option<&'a str>,
}

/// The family of a device that no rule matches.
pub const UNKNOWN: &str = "unknown";

/// Most rules a store's file may hold.
pub const MAX_USER_RULES: usize = 1_000;
const MAX_TEXT: usize = 64;

fn starts_with_ci(hay: &str, needle: &str) -> bool {
    hay.len() >= needle.len()
        && hay.as_bytes()[..needle.len()].eq_ignore_ascii_case(needle.as_bytes())
}

fn contains_ci(hay: &str, needle: &str) -> bool {
    needle.is_empty()
        || hay
            .as_bytes()
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

impl FingerprintRule {
    fn has_condition(&self) -> bool {
        self.prl.is_some()
            || self.prl_prefix.is_some()
            || self.vendor_class_prefix.is_some()
            || self.vendor_class_contains.is_some()
            || self.hostname_contains.is_some()
    }

    /// Whether every condition of this rule holds for `t`.
    pub fn matches(&self, t: &DhcpTraits<'_>) -> bool {
        if !self.has_condition() {
            return false;
        }
        let vendor = t.vendor_class.unwrap_or("");
        let host = t.hostname.unwrap_or("");
        self.prl.as_deref().is_none_or(|p| p == t.prl)
            && self
                .prl_prefix
                .as_deref()
                .is_none_or(|p| t.prl.starts_with(p))
            && self
                .vendor_class_prefix
                .as_deref()
                .is_none_or(|p| t.vendor_class.is_some() && starts_with_ci(vendor, p))
            && self
                .vendor_class_contains
                .as_deref()
                .is_none_or(|p| t.vendor_class.is_some() && contains_ci(vendor, p))
            && self
                .hostname_contains
                .as_deref()
                .is_none_or(|p| t.hostname.is_some() && contains_ci(host, p))
    }
}

/// The first rule in `user`, then in the built-in table, that matches;
/// else [`UNKNOWN`].
pub fn os_family<'r>(
    user: &'r [FingerprintRule],
    builtin: &'r [FingerprintRule],
    t: &DhcpTraits<'_>,
) -> &'r str {
    user.iter()
        .chain(builtin)
        .find(|r| r.matches(t))
        .map_or(UNKNOWN, |r| r.os_family.as_str())
}

/// How a built-in rule is written down (kept `const` so the table reads
/// as a table).
struct Builtin {
    os: &'static str,
    prl: Option<&'static [u8]>,
    prl_prefix: Option<&'static [u8]>,
    vendor_prefix: Option<&'static str>,
    host: Option<&'static str>,
}

const NONE: Builtin = Builtin {
    os: "",
    prl: None,
    prl_prefix: None,
    vendor_prefix: None,
    host: None,
};

const fn prl(os: &'static str, list: &'static [u8]) -> Builtin {
    Builtin {
        os,
        prl: Some(list),
        ..NONE
    }
}

const fn prl_prefix(os: &'static str, list: &'static [u8]) -> Builtin {
    Builtin {
        os,
        prl_prefix: Some(list),
        ..NONE
    }
}

const fn vendor(os: &'static str, prefix: &'static str) -> Builtin {
    Builtin {
        os,
        vendor_prefix: Some(prefix),
        ..NONE
    }
}

const fn vendor_host(os: &'static str, prefix: &'static str, host: &'static str) -> Builtin {
    Builtin {
        os,
        vendor_prefix: Some(prefix),
        host: Some(host),
        ..NONE
    }
}

/// Apple's lists all begin like this; with a telling host name that is
/// enough to split iOS from macOS.
const APPLE: &[u8] = &[1, 121, 3, 6, 15];

const fn apple_host(os: &'static str, host: &'static str) -> Builtin {
    Builtin {
        os,
        prl_prefix: Some(APPLE),
        host: Some(host),
        ..NONE
    }
}

/// The built-in table, most specific first.
const BUILTIN: &[Builtin] = &[
    // Vendor classes name the client outright.
    vendor("chromeos", "chromeos"),
    vendor("android", "android-dhcp-"),
    // Android up to 9 ran dhcpcd, which names itself, not Android; its
    // default host name does.
    vendor_host("android", "dhcpcd-", "android"),
    vendor("windows", "MSFT"),
    vendor("linux", "dhcpcd-"),
    vendor("linux", "udhcp "),
    // Apple, with a host name that tells iOS from macOS.
    apple_host("ios", "iphone"),
    apple_host("ios", "ipad"),
    apple_host("macos", "mac"),
    // iOS / iPadOS, newest first (108: IPv6-only preferred, 114: captive
    // portal API).
    prl("ios", &[1, 121, 3, 6, 15, 108, 114, 119, 252, 95, 44, 46]),
    prl("ios", &[1, 121, 3, 6, 15, 108, 114, 119, 252]),
    prl("ios", &[1, 121, 3, 6, 15, 114, 119, 252]),
    prl("ios", &[1, 121, 3, 6, 15, 119, 252]),
    prl("ios", &[1, 3, 6, 15, 119, 252]),
    // macOS 10.12 to 12, then older OS X.
    prl("macos", &[1, 121, 3, 6, 15, 119, 252, 95, 44, 46]),
    prl("macos", &[1, 3, 6, 15, 119, 95, 252, 44, 46]),
    prl("macos", &[1, 3, 6, 15, 119, 95, 252, 44, 46, 101]),
    // Android's own DhcpClient (10+), which may hide its vendor class.
    prl("android", &[1, 3, 6, 15, 26, 28, 51, 58, 59, 43, 114, 108]),
    prl("android", &[1, 3, 6, 15, 26, 28, 51, 58, 59, 43, 114]),
    prl("android", &[1, 3, 6, 15, 26, 28, 51, 58, 59, 43]),
    prl("android", &[1, 3, 6, 15, 26, 28, 51, 58, 59]),
    // Windows 10/11, then 7/8.
    prl(
        "windows",
        &[1, 3, 6, 15, 31, 33, 43, 44, 46, 47, 119, 121, 249, 252],
    ),
    prl(
        "windows",
        &[1, 15, 3, 6, 44, 46, 47, 31, 33, 121, 249, 252, 43],
    ),
    prl("windows", &[1, 15, 3, 6, 44, 46, 47, 31, 33, 121, 249, 43]),
    // Linux clients as measured (see the module docs). Debian-family
    // dhclient configs vary at the tail, so the head is a prefix.
    prl_prefix("linux", &[1, 28, 2, 3, 15, 6, 119, 12]),
    prl(
        "linux",
        &[1, 121, 3, 6, 12, 15, 26, 28, 33, 51, 54, 58, 59, 119],
    ),
    prl("linux", &[1, 3, 6, 12, 15, 28, 42]),
];

/// The built-in table as rules.
pub fn builtin_rules() -> Vec<FingerprintRule> {
    BUILTIN
        .iter()
        .map(|b| FingerprintRule {
            os_family: b.os.to_owned(),
            prl: b.prl.map(<[u8]>::to_vec),
            prl_prefix: b.prl_prefix.map(<[u8]>::to_vec),
            vendor_class_prefix: b.vendor_prefix.map(str::to_owned),
            vendor_class_contains: None,
            hostname_contains: b.host.map(str::to_owned),
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    os_family: String,
    prl: Option<Vec<u8>>,
    prl_prefix: Option<Vec<u8>>,
    vendor_class_prefix: Option<String>,
    vendor_class_contains: Option<String>,
    hostname_contains: Option<String>,
}

/// Reads a store's own fingerprint rules:
///
/// ```toml
/// [[rule]]
/// os_family = "ios"
/// prl = [1, 121, 3, 6, 15, 108, 114, 119, 252, 95, 44, 46]
///
/// [[rule]]
/// os_family = "linux"
/// vendor_class_prefix = "udhcp "
/// ```
///
/// Conditions: `prl`, `prl_prefix` (lists of option numbers),
/// `vendor_class_prefix`, `vendor_class_contains`, `hostname_contains`
/// (strings, ASCII case ignored). All given must hold; at least one must
/// be given. Errors name the rule, e.g. `rule[2].os_family: ...`.
pub fn parse_fingerprint_file(text: &str) -> Result<Vec<FingerprintRule>, String> {
    let de = toml::Deserializer::parse(text).map_err(|e| e.message().trim().to_owned())?;
    let raw: RawFile = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.message().trim().to_owned();
        if path == "." || path.is_empty() {
            msg
        } else {
            format!("{path}: {msg}")
        }
    })?;
    if raw.rule.len() > MAX_USER_RULES {
        return Err(format!(
            "too many rules: {} (at most {MAX_USER_RULES})",
            raw.rule.len()
        ));
    }
    raw.rule
        .into_iter()
        .enumerate()
        .map(|(i, r)| validate(r).map_err(|e| format!("rule[{i}]{e}")))
        .collect()
}

fn validate(r: RawRule) -> Result<FingerprintRule, String> {
    let os_ok = (1..=32).contains(&r.os_family.len())
        && r.os_family
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !os_ok {
        return Err(format!(
            ".os_family: {:?} is not 1 to 32 of a-z, 0-9, '_' and '-'",
            r.os_family
        ));
    }
    for (key, list) in [("prl", &r.prl), ("prl_prefix", &r.prl_prefix)] {
        if list.as_ref().is_some_and(|l| l.is_empty()) {
            return Err(format!(".{key}: must not be empty"));
        }
    }
    for (key, text) in [
        ("vendor_class_prefix", &r.vendor_class_prefix),
        ("vendor_class_contains", &r.vendor_class_contains),
        ("hostname_contains", &r.hostname_contains),
    ] {
        if text
            .as_ref()
            .is_some_and(|t| t.is_empty() || t.len() > MAX_TEXT)
        {
            return Err(format!(".{key}: must be 1 to {MAX_TEXT} bytes"));
        }
    }
    let rule = FingerprintRule {
        os_family: r.os_family,
        prl: r.prl,
        prl_prefix: r.prl_prefix,
        vendor_class_prefix: r.vendor_class_prefix,
        vendor_class_contains: r.vendor_class_contains,
        hostname_contains: r.hostname_contains,
    };
    if !rule.has_condition() {
        return Err(": gives no condition (prl, prl_prefix, vendor_class_prefix, vendor_class_contains or hostname_contains)".into());
    }
    Ok(rule)
}

#[cfg(test)]
mod tests;
