//! `[presence]`: resident thresholds and the fingerprint file.

use std::path::Path;
use std::time::Duration;

use super::*;

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

/// `[presence]` with `fingerprint_file` set to `path`.
fn with_fingerprint_file(path: &Path) -> String {
    format!(
        "{MINIMAL}\n[presence]\nfingerprint_file = '{}'\n",
        path.display()
    )
}

#[test]
fn fingerprint_rules_are_read_and_kept_at_load() {
    let c = Config::parse(MINIMAL).unwrap();
    assert!(c.presence.fingerprint_file.is_none());
    assert!(c.presence.fingerprints.is_empty());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fingerprints.toml");
    std::fs::write(
        &path,
        "[[rule]]\nos_family = \"kiosk\"\nvendor_class_prefix = \"acme-\"\n\n\
         [[rule]]\nos_family = \"till\"\nprl = [1, 3, 6]\n",
    )
    .unwrap();
    let c = Config::parse(&with_fingerprint_file(&path)).unwrap();
    assert_eq!(c.presence.fingerprint_file.as_deref(), Some(path.as_path()));
    let families: Vec<&str> = c
        .presence
        .fingerprints
        .iter()
        .map(|r| r.os_family.as_str())
        .collect();
    assert_eq!(families, ["kiosk", "till"]);
    assert_eq!(
        c.presence.fingerprints[0].vendor_class_prefix.as_deref(),
        Some("acme-")
    );
    assert_eq!(c.presence.fingerprints[1].prl, Some(vec![1, 3, 6]));
}

#[test]
fn a_missing_fingerprint_file_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-rules.toml");
    let e = err(&with_fingerprint_file(&path));
    assert_eq!(e.key, "presence.fingerprint_file", "{e}");
    assert!(e.problem.contains("no-such-rules.toml"), "{e}");
    assert!(e.problem.contains("cannot read"), "{e}");
    // A directory is not a rules file either.
    let e = err(&with_fingerprint_file(dir.path()));
    assert_eq!(e.key, "presence.fingerprint_file", "{e}");
}

#[test]
fn an_unparsable_fingerprint_file_is_refused_at_load_naming_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.toml");
    for (text, detail) in [
        ("this is not toml", ""),
        // A rule with no condition matches everything: refused.
        ("[[rule]]\nos_family = \"kiosk\"\n", "rule[0]"),
        (
            "[[rule]]\nos_family = \"ok\"\nprl = [1]\n[[rule]]\nos_family = \"Bad Name\"\nprl = [1]\n",
            "rule[1].os_family",
        ),
        (
            "[[rule]]\nos_family = \"x\"\nprl = [1]\nbogus = 2\n",
            "bogus",
        ),
    ] {
        std::fs::write(&path, text).unwrap();
        let e = err(&with_fingerprint_file(&path));
        assert_eq!(e.key, "presence.fingerprint_file", "{text:?}: {e}");
        assert!(e.problem.contains("rules.toml"), "{text:?}: {e}");
        assert!(e.problem.contains(detail), "{text:?}: {e}");
    }
    std::fs::write(&path, [0xff, 0xfe, b'\n']).unwrap();
    let e = err(&with_fingerprint_file(&path));
    assert_eq!(e.key, "presence.fingerprint_file", "{e}");
    assert!(e.problem.contains("UTF-8"), "{e}");
}
