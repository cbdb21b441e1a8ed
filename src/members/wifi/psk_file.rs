//! hostapd's `wpa_psk_file`, written by storegate: one line per member
//! key, `keyid=<member_id> 00:00:00:00:00:00 <64 hex digits>` (the
//! all-zero address: any station may use the key; `keyid` names the
//! member in hostapd's `AP-STA-CONNECTED` events).
//!
//! hostapd may re-read the file at any moment (`RELOAD_WPA_PSK`, a
//! restart), so it must never see half of one: the new text goes to a
//! temporary file in the same directory, created with mode 0600 (the
//! PSKs are secrets; no window where it is readable by others), is
//! synced, renamed over the old one and the directory synced, so after a
//! power cut the file is the old one or the new one.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use rand::RngCore;
use rand::rngs::OsRng;

/// The file's text for `keys` (member id, PSK hex), in the order given.
pub fn render<'a>(keys: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (member_id, psk) in keys {
        out.push_str("keyid=");
        out.push_str(member_id);
        out.push_str(" 00:00:00:00:00:00 ");
        out.push_str(psk);
        out.push('\n');
    }
    out
}

/// Replaces `path` with `text` atomically (see the module docs). The
/// directory is made (mode 0700) if missing.
pub fn write_atomic(path: &Path, text: &str) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file path"))?;
    if !dir.is_dir() {
        DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    let tmp = dir.join(format!(
        ".{}.{:016x}.tmp",
        name.to_string_lossy(),
        OsRng.next_u64()
    ));
    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    const PSK: &str = "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e";

    #[test]
    fn lines_are_as_hostapd_reads_them() {
        assert_eq!(
            render([("m_abc", PSK), ("m_def", PSK)]),
            format!("keyid=m_abc 00:00:00:00:00:00 {PSK}\nkeyid=m_def 00:00:00:00:00:00 {PSK}\n")
        );
        assert_eq!(render([]), "");
    }

    #[test]
    fn written_atomically_with_mode_0600_and_nothing_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run").join("members.psk");
        write_atomic(&path, "one\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "one\n");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        // A reader holding the old file keeps reading the old text whole:
        // the new one arrives by rename (a new inode), not by rewriting.
        let mut old = File::open(&path).unwrap();
        write_atomic(&path, "two\n").unwrap();
        let mut before = String::new();
        io::Read::read_to_string(&mut old, &mut before).unwrap();
        assert_eq!(before, "one\n");
        assert_eq!(fs::read_to_string(&path).unwrap(), "two\n");
        assert_eq!(mode(&path), 0o600);
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("members.psk")]);
    }

    #[test]
    fn a_failed_write_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("members.psk");
        write_atomic(&path, "old\n").unwrap();
        // A directory where the file should go: the rename fails.
        let blocked = dir.path().join("blocked");
        fs::create_dir(&blocked).unwrap();
        fs::write(blocked.join("x"), "").unwrap();
        assert!(write_atomic(&blocked, "new\n").is_err());
        assert_eq!(fs::read_to_string(&path).unwrap(), "old\n");
        let tmps = fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".tmp")
            })
            .count();
        assert_eq!(tmps, 0);
    }
}
