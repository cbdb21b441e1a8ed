//! Forged frames from a phone: `tests/lab/forge.py` run in the phone's
//! namespace, sending raw DHCP and ARP frames that name other devices.

use std::process::Command;

use serde_json::Value;

use super::lab::{Client, Lab};
use super::process::python;
use crate::fail;

impl Lab {
    /// Runs `tests/lab/forge.py MODE eth0 ARGS` in the client's namespace
    /// and returns its JSON line (`sent`, `elapsed_ms`).
    pub fn forge(&self, c: Client, mode: &str, args: &[&str]) -> Value {
        let script = self.lab_scripts.join("forge.py").display().to_string();
        let out = Command::new("ip")
            .args(["netns", "exec", self.ns(c), python(), &script, mode, "eth0"])
            .args(args)
            .output()
            .expect("start forge.py");
        if !out.status.success() {
            fail!(
                self,
                "forge.py {mode} from {} failed: {}",
                c.name(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }
}
