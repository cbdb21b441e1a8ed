//! The house rules of `src/`, checked on the source: no import cycle
//! between top-level modules, no file over 600 lines (in `hq/src/` too),
//! only the command line and the demo may reach into `daemon` (which
//! only wires), and the router's crate does not depend on the NATS
//! client (only `storegate-hq` does).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 600;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Top-level module of a file under src/ (`src/net/wire/arp.rs` → `net`).
fn module_of(file: &Path) -> String {
    let rel = file.strip_prefix(src()).expect("under src/");
    let first = rel.components().next().expect("a path");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_string()
}

/// Test code may reach anywhere; the layering is about what ships.
fn is_test_code(file: &Path) -> bool {
    let rel = file
        .strip_prefix(src())
        .expect("under src/")
        .to_string_lossy()
        .to_string();
    rel.ends_with("tests.rs") || rel.contains("/tests/") || rel.ends_with("rig.rs")
}

/// `crate::x` paths used in code (comments left out), by top-level module.
fn edges() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let modules: BTreeSet<String> = files
        .iter()
        .map(|f| module_of(f))
        .filter(|m| m != "main" && m != "lib")
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files.iter().filter(|f| !is_test_code(f)) {
        let from = module_of(file);
        let text = std::fs::read_to_string(file).expect("a readable source file");
        // `#[cfg(test)] mod tests { ... }` at the end of a file is test code.
        let code = text.split("#[cfg(test)]\nmod tests {").next().unwrap_or("");
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (i, _) in line.match_indices("crate::") {
                let to: String = line[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if to != from && modules.contains(&to) {
                    edges.entry(from.clone()).or_default().insert(to);
                }
            }
        }
    }
    edges
}

fn reaches(edges: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from.to_string()];
    while let Some(m) = stack.pop() {
        for next in edges.get(&m).into_iter().flatten() {
            if next == to {
                return true;
            }
            if seen.insert(next.clone()) {
                stack.push(next.clone());
            }
        }
    }
    false
}

#[test]
fn top_level_modules_import_no_cycle() {
    let edges = edges();
    assert!(
        edges.contains_key("daemon"),
        "the scan found nothing: {edges:?}"
    );
    let cycles: Vec<String> = edges
        .iter()
        .flat_map(|(from, tos)| tos.iter().map(move |to| (from, to)))
        .filter(|(from, to)| reaches(&edges, to, from))
        .map(|(from, to)| format!("{from} -> {to}"))
        .collect();
    assert!(cycles.is_empty(), "edges on an import cycle: {cycles:?}");
}

#[test]
fn only_the_command_line_and_the_demo_import_the_daemon() {
    let importers: Vec<String> = edges()
        .into_iter()
        .filter(|(_, tos)| tos.contains("daemon"))
        .map(|(from, _)| from)
        .filter(|from| from != "cli" && from != "sim")
        .collect();
    assert!(importers.is_empty(), "these import daemon: {importers:?}");
}

#[test]
fn no_source_file_is_over_600_lines() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    // HQ's service, the workspace's other crate, keeps the same rule.
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("hq/src"),
        &mut files,
    );
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).ok()?.lines().count();
            (n > MAX_LINES).then(|| format!("{} ({n})", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "over {MAX_LINES} lines: {long:?}");
}

#[test]
fn the_router_crate_does_not_depend_on_nats() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .expect("Cargo.toml is readable");
    let deps = manifest
        .split("\n[")
        .filter(|section| section.starts_with("dependencies]") || section.starts_with("target."))
        .collect::<String>();
    assert!(
        !deps.to_ascii_lowercase().contains("nats"),
        "the router's crate must not link a NATS client; HQ's service is the hq/ crate"
    );
}
