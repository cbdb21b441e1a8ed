//! The command line as DESIGN.md and the tests use it, and what a mistake
//! or a request for help gives (text, stream, exit code).

use std::ffi::OsString;
use std::path::PathBuf;

use super::{Command, CtlCommand, Stop, parse};

fn words(line: &str) -> Vec<OsString> {
    line.split_whitespace().map(OsString::from).collect()
}

fn ok(line: &str) -> Command {
    match parse(words(line)) {
        Ok(c) => c,
        Err(stop) => panic!("{line}: {}", stop.text),
    }
}

fn stop(line: &str) -> Stop {
    match parse(words(line)) {
        Ok(c) => panic!("{line}: parsed as {c:?}"),
        Err(stop) => stop,
    }
}

#[test]
fn run_takes_its_config_in_every_spelling() {
    for line in [
        "run -c a.toml",
        "run --config a.toml",
        "run --config=a.toml",
        "run -ca.toml",
        "run -c=a.toml",
    ] {
        match ok(line) {
            Command::Run { config } => assert_eq!(config, PathBuf::from("a.toml"), "{line}"),
            other => panic!("{line}: {other:?}"),
        }
    }
}

#[test]
fn run_without_a_config_is_a_usage_error() {
    let s = stop("run");
    assert_eq!(s.code, 2);
    assert!(
        s.text.starts_with(
            "error: the following required arguments were not provided:\n  --config <CONFIG>\n"
        ),
        "{}",
        s.text
    );
    assert!(
        s.text.contains("Usage: storegate run --config <CONFIG>"),
        "{}",
        s.text
    );
    let s = stop("run -c");
    assert_eq!(s.code, 2);
    assert!(
        s.text
            .contains("a value is required for '--config <CONFIG>'"),
        "{}",
        s.text
    );
    let s = stop("run -c a.toml -c b.toml");
    assert!(
        s.text.contains("cannot be used multiple times"),
        "{}",
        s.text
    );
    let s = stop("run -c a.toml -x");
    assert_eq!(s.code, 2);
    assert!(
        s.text.starts_with("error: unexpected argument '-x' found"),
        "{}",
        s.text
    );
}

#[test]
fn positionals_are_required_and_counted() {
    assert!(
        matches!(ok("check-config f.toml"), Command::CheckConfig { file } if file == std::path::Path::new("f.toml"))
    );
    assert!(matches!(
        ok("uci-to-toml storegate"),
        Command::UciToToml { .. }
    ));
    assert!(matches!(
        ok("migrate-state /var/lib/x"),
        Command::MigrateState { .. }
    ));
    // After `--` a word that starts with `-` is a file name.
    assert!(
        matches!(ok("check-config -- -odd.toml"), Command::CheckConfig { file } if file == std::path::Path::new("-odd.toml"))
    );
    let s = stop("check-config");
    assert_eq!(s.code, 2);
    assert!(s.text.contains("  <FILE>\n"), "{}", s.text);
    let s = stop("check-config a b");
    assert!(
        s.text.starts_with("error: unexpected argument 'b' found"),
        "{}",
        s.text
    );
}

#[test]
fn ctl_takes_json_before_or_after_its_command() {
    for line in [
        "ctl -s /tmp/c.sock status --json",
        "ctl -s /tmp/c.sock --json status",
        "ctl --socket=/tmp/c.sock status --json",
    ] {
        match ok(line) {
            Command::Ctl {
                socket,
                json,
                command: CtlCommand::Status,
            } => {
                assert_eq!(socket, PathBuf::from("/tmp/c.sock"), "{line}");
                assert!(json, "{line}");
            }
            other => panic!("{line}: {other:?}"),
        }
    }
    match ok("ctl clients") {
        Command::Ctl { socket, json, .. } => {
            assert_eq!(socket, PathBuf::from("/run/storegate/control.sock"));
            assert!(!json);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn ctl_commands_and_their_arguments() {
    let ctl = |line: &str| match ok(&format!("ctl {line}")) {
        Command::Ctl { command, .. } => command,
        other => panic!("{line}: {other:?}"),
    };
    assert!(
        matches!(ctl("auth aa:bb:cc:dd:ee:ff"), CtlCommand::Auth { mac } if mac == "aa:bb:cc:dd:ee:ff")
    );
    assert!(matches!(
        ctl("deauth aa:bb:cc:dd:ee:ff --json"),
        CtlCommand::Deauth { .. }
    ));
    assert!(
        matches!(ctl("member-erase m-1"), CtlCommand::MemberErase { member_id } if member_id == "m-1")
    );
    assert!(matches!(
        ctl("dead-letters"),
        CtlCommand::DeadLetters { retry: false }
    ));
    assert!(matches!(
        ctl("dead-letters --retry"),
        CtlCommand::DeadLetters { retry: true }
    ));
    assert!(matches!(ctl("events"), CtlCommand::Events { limit: 100 }));
    assert!(matches!(
        ctl("events --limit 5"),
        CtlCommand::Events { limit: 5 }
    ));
    assert!(matches!(
        ctl("dashboard-password"),
        CtlCommand::DashboardPassword
    ));
    match ctl("observe 02:00:00:00:00:01 --ip 10.0.0.9 --hostname=tablet") {
        CtlCommand::Observe { mac, ip, hostname } => {
            assert_eq!(mac, "02:00:00:00:00:01");
            assert_eq!(ip.as_deref(), Some("10.0.0.9"));
            assert_eq!(hostname.as_deref(), Some("tablet"));
        }
        other => panic!("{other:?}"),
    }
    for line in [
        "status", "clients", "devices", "visits", "footfall", "members",
    ] {
        ctl(line);
    }
    let s = stop("ctl events --limit x");
    assert_eq!(s.code, 2);
    assert!(
        s.text.starts_with(
            "error: invalid value 'x' for '--limit <LIMIT>': invalid digit found in string"
        ),
        "{}",
        s.text
    );
    let s = stop("ctl bogus");
    assert_eq!(s.code, 2);
    assert!(
        s.text.starts_with("error: unrecognized subcommand 'bogus'"),
        "{}",
        s.text
    );
    let s = stop("ctl auth");
    assert!(s.text.contains("  <MAC>\n"), "{}", s.text);
    // `-s` belongs to `ctl`, not to its commands.
    assert_eq!(stop("ctl status -s x").code, 2);
    let s = stop("ctl status --json=yes");
    assert!(
        s.text.contains("unexpected value 'yes' for '--json'"),
        "{}",
        s.text
    );
}

#[test]
fn demo_and_receiver_options() {
    match ok("demo") {
        Command::Demo(a) => {
            assert_eq!(a.speed, 120.0);
            assert_eq!((a.seed, a.state, a.port_base), (None, None, None));
            assert!(!a.fresh);
            assert_eq!(a.date, None);
        }
        other => panic!("{other:?}"),
    }
    match ok("demo --speed 300 --seed 7 --state /tmp/d --port-base 19000 --fresh --date 2026-12-24")
    {
        Command::Demo(a) => {
            assert!(a.fresh);
            assert_eq!(a.date.as_deref(), Some("2026-12-24"));
            assert_eq!(a.speed, 300.0);
            assert_eq!(a.seed, Some(7));
            assert_eq!(a.state, Some(PathBuf::from("/tmp/d")));
            assert_eq!(a.port_base, Some(19000));
        }
        other => panic!("{other:?}"),
    }
    let s = stop("demo --speed abc");
    assert!(
        s.text
            .starts_with("error: invalid value 'abc' for '--speed <SPEED>': invalid float literal"),
        "{}",
        s.text
    );
    match ok(
        "hq-receiver --listen 127.0.0.1:0 --secret whsec_x --tls-cert c.pem --tls-key k.pem --client-ca ca.pem --sync-file s.json",
    ) {
        Command::HqReceiver(a) => {
            assert_eq!(a.listen.as_deref(), Some("127.0.0.1:0"));
            assert_eq!(a.secret.as_deref(), Some("whsec_x"));
            assert_eq!(a.tls_cert, Some(PathBuf::from("c.pem")));
            assert_eq!(a.tls_key, Some(PathBuf::from("k.pem")));
            assert_eq!(a.client_ca, Some(PathBuf::from("ca.pem")));
            assert_eq!(a.sync_file, Some(PathBuf::from("s.json")));
        }
        other => panic!("{other:?}"),
    }
    // Missing --listen or --secret is the receiver's own usage error.
    assert!(matches!(ok("hq-receiver"), Command::HqReceiver(_)));
}

#[test]
fn help_and_version_go_to_stdout_with_exit_0() {
    for line in ["--help", "-h", "help"] {
        let s = stop(line);
        assert_eq!(s.code, 0, "{line}");
        assert!(
            s.text.starts_with(
                "Captive portal and presence for store routers\n\nUsage: storegate <COMMAND>\n"
            ),
            "{line}: {}",
            s.text
        );
        for name in [
            "run",
            "check-config",
            "uci-to-toml",
            "ctl",
            "demo",
            "hq-receiver",
        ] {
            assert!(
                s.text.contains(&format!("\n  {name} ")),
                "{line}: {name}: {}",
                s.text
            );
        }
        // Hidden: run does it by itself.
        assert!(!s.text.contains("migrate-state"), "{}", s.text);
        assert!(s.text.contains("-V, --version"), "{}", s.text);
    }
    for line in ["--version", "-V"] {
        let s = stop(line);
        assert_eq!(
            (s.code, s.text.as_str()),
            (0, concat!("storegate ", env!("CARGO_PKG_VERSION"), "\n"))
        );
    }
    for line in ["run --help", "help run", "run -h"] {
        let s = stop(line);
        assert_eq!(s.code, 0);
        assert_eq!(
            s.text,
            "Run the daemon\n\nUsage: storegate run --config <CONFIG>\n\nOptions:\n  \
             -c, --config <CONFIG>  The config file\n  -h, --help             Print help\n"
        );
    }
    let s = stop("ctl events --help");
    assert_eq!(s.code, 0);
    assert!(
        s.text.contains("Usage: storegate ctl events [OPTIONS]\n"),
        "{}",
        s.text
    );
    assert!(
        s.text.contains(
            "--limit <LIMIT>  How many (newest first kept, printed oldest first) [default: 100]\n"
        ),
        "{}",
        s.text
    );
    let s = stop("ctl help auth");
    assert!(
        s.text
            .contains("Usage: storegate ctl auth [OPTIONS] <MAC>\n"),
        "{}",
        s.text
    );
    let s = stop("ctl --help");
    assert!(s.text.contains("-s, --socket <SOCKET>  The daemon's control socket [default: /run/storegate/control.sock]"), "{}", s.text);
    // --version belongs to the top only.
    assert_eq!(stop("run --version").code, 2);
    assert_eq!(stop("help bogus").code, 2);
}

#[test]
fn a_missing_command_prints_help_on_stderr_with_exit_2() {
    let s = stop("");
    assert_eq!(s.code, 2);
    assert!(s.text.contains("Usage: storegate <COMMAND>"), "{}", s.text);
    let s = stop("ctl -s x");
    assert_eq!(s.code, 2);
    assert!(
        s.text.contains("Usage: storegate ctl [OPTIONS] <COMMAND>"),
        "{}",
        s.text
    );
    let s = stop("bogus");
    assert!(s.text.starts_with("error: unrecognized subcommand 'bogus'\n\nUsage: storegate <COMMAND>\n\nFor more information, try '--help'.\n"), "{}", s.text);
}
