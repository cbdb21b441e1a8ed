//! The files under firmware/ as shipped: the OpenWrt package's UCI config
//! translates into a valid TOML config, the shell scripts are shellcheck
//! clean, and the systemd unit passes `systemd-analyze verify`. Tools that
//! are missing (scripts/test.sh installs them) skip their test with a message.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn storegate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_storegate"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run storegate")
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", "command -v \"$1\" >/dev/null 2>&1", "sh", tool])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn package_uci_config_translates_to_a_valid_config() {
    let out = storegate(&["uci-to-toml", "firmware/openwrt/files/storegate.config"]);
    assert!(
        out.status.success(),
        "uci-to-toml failed: {}",
        text(&out.stderr)
    );
    let toml_text = text(&out.stdout);
    assert!(
        toml_text.contains("[store]\nid = \"store-01\""),
        "{toml_text}"
    );
    assert!(
        !toml_text.contains("log_level"),
        "service section leaked: {toml_text}"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("storegate.toml");
    std::fs::write(&file, &toml_text).unwrap();
    let check = storegate(&["check-config", file.to_str().unwrap()]);
    assert!(
        check.status.success(),
        "check-config refused the translation: {}\n{toml_text}",
        text(&check.stderr)
    );
}

#[test]
fn bad_uci_config_exits_1_naming_section_and_option() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("storegate");
    std::fs::write(
        &file,
        "config store 'store'\n\toption id 'wulin-01'\nconfig lan 'lan'\n\toption interface 'br-lan'\n\
         config storage 'storage'\n\toption path '/var/lib/storegate'\n\
         config portal 'portal'\n\toption idle_timeout 'a while'\n",
    )
    .unwrap();
    let out = storegate(&["uci-to-toml", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "printed TOML despite the error");
    let err = text(&out.stderr);
    assert!(
        err.contains("section 'portal' (config portal, line 7), option 'idle_timeout' (line 8): "),
        "{err}"
    );

    std::fs::write(&file, "config store\n\toption id 'x\n").unwrap();
    let out = storegate(&["uci-to-toml", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("line 2: unterminated single quote"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn shell_scripts_are_shellcheck_clean() {
    if !have("shellcheck") {
        eprintln!("SKIPPED: shellcheck is not installed (scripts/test.sh installs it as root)");
        return;
    }
    let files: &[(&str, &str)] = &[
        ("sh", "firmware/openwrt/files/storegate.init"),
        ("sh", "firmware/openwrt/files/firewall.include"),
        ("sh", "firmware/openwrt/files/storegate.uci-defaults"),
        ("bash", "firmware/build-static.sh"),
    ];
    for (shell, file) in files {
        let out = Command::new("shellcheck")
            .args(["-s", shell, file])
            .current_dir(root())
            .output()
            .expect("run shellcheck");
        assert!(
            out.status.success(),
            "shellcheck {file}:\n{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}

#[test]
fn init_script_never_evaluates_config_values() {
    let script =
        std::fs::read_to_string(root().join("firmware/openwrt/files/storegate.init")).unwrap();
    for line in script
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
    {
        for word in ["eval ", "`", "$(", "sh -c"] {
            assert!(
                !line.contains(word),
                "init script line uses {word:?}: {line}"
            );
        }
    }
    assert!(script.contains("procd_add_reload_trigger storegate firewall"));
    assert!(script.contains("uci-to-toml"));
}

#[test]
fn systemd_unit_verifies() {
    if !have("systemd-analyze") {
        eprintln!(
            "SKIPPED: systemd-analyze is not installed (scripts/test.sh installs systemd as root)"
        );
        return;
    }
    // verify checks that ExecStart's binary exists: point it at this build.
    let unit = std::fs::read_to_string(root().join("firmware/systemd/storegate.service")).unwrap();
    let unit = unit.replace("/usr/local/bin/storegate", env!("CARGO_BIN_EXE_storegate"));
    let dir = tempfile::tempdir().unwrap();
    let path: &Path = &dir.path().join("storegate.service");
    std::fs::write(path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", path.to_str().unwrap()])
        .output()
        .expect("run systemd-analyze");
    let stderr = text(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("storegate.service"),
        "systemd-analyze verify:\n{stderr}{}",
        text(&out.stdout)
    );
}
