//! Failure messages that explain themselves: the [`Diag`] trait (a lab or a
//! daemon in it can append its log tails and firewall ruleset), the
//! `check!`, `check_eq!` and `fail!` macros that use it, and lines printed
//! past libtest's capture.

use std::fs;
use std::io::Write;
use std::path::Path;

use super::process::run;

/// Prints a line that libtest does not capture.
pub fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The last `lines` lines of a file, or a note that it is missing.
pub fn tail(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            let start = all.len().saturating_sub(lines);
            let mut s = String::new();
            if start > 0 {
                s.push_str(&format!("[... {start} earlier lines]\n"));
            }
            for l in &all[start..] {
                s.push_str(l);
                s.push('\n');
            }
            s
        }
        Err(e) => format!("[{}: {e}]\n", path.display()),
    }
}

/// The tails of the lab's logs in `dir` and the gateway's nft ruleset.
pub(super) fn diagnostics(dir: &Path, gw_ns: &str) -> String {
    let nft = run("ip", &["netns", "exec", gw_ns, "nft", "list", "ruleset"]);
    let ruleset = String::from_utf8_lossy(&nft.stdout);
    let ruleset: Vec<&str> = ruleset.lines().take(120).collect();
    format!(
        "\n----- storegate log (tail) -----\n{}----- dnsmasq log (tail) -----\n{}\
         ----- internet log (tail) -----\n{}----- nft ruleset in {gw_ns} -----\n{}\n-----",
        tail(&dir.join("storegate.log"), 60),
        tail(&dir.join("dnsmasq.log"), 25),
        tail(&dir.join("internet.log"), 15),
        ruleset.join("\n"),
    )
}

/// Something that can explain a failure with the lab's logs.
pub trait Diag {
    fn diag(&self) -> String;
}

impl<T: Diag + ?Sized> Diag for &T {
    fn diag(&self) -> String {
        (**self).diag()
    }
}

impl<T: Diag + ?Sized> Diag for &mut T {
    fn diag(&self) -> String {
        (**self).diag()
    }
}

/// `assert!` that appends the lab's (or daemon's) log tails on failure.
#[macro_export]
macro_rules! check {
    ($ctx:expr, $cond:expr $(,)?) => {
        $crate::check!($ctx, $cond, "{}", stringify!($cond))
    };
    ($ctx:expr, $cond:expr, $($fmt:tt)+) => {
        if $cond {
        } else {
            panic!("check failed: {}{}", format!($($fmt)+), $crate::harness::Diag::diag(&$ctx));
        }
    };
}

/// `assert_eq!` that appends the lab's (or daemon's) log tails on failure.
#[macro_export]
macro_rules! check_eq {
    ($ctx:expr, $left:expr, $right:expr $(,)?) => {
        $crate::check_eq!($ctx, $left, $right, "{} == {}", stringify!($left), stringify!($right))
    };
    ($ctx:expr, $left:expr, $right:expr, $($fmt:tt)+) => {
        match (&$left, &$right) {
            (l, r) => {
                if !(*l == *r) {
                    panic!(
                        "check failed: {}\n  left: {:?}\n right: {:?}{}",
                        format!($($fmt)+), l, r, $crate::harness::Diag::diag(&$ctx)
                    );
                }
            }
        }
    };
}

/// Panics with a message and the lab's (or daemon's) log tails.
#[macro_export]
macro_rules! fail {
    ($ctx:expr, $($fmt:tt)+) => {
        panic!("{}{}", format!($($fmt)+), $crate::harness::Diag::diag(&$ctx))
    };
}
