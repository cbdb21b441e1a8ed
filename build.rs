//! Router builds link without unwind tables.
//!
//! The router's profile (`release-small`: opt-level "z", panic = "abort")
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
//! `rustflags` in `.cargo/config.toml`, also holds when `RUSTFLAGS` is set
//! (as OpenWrt's build does).

use std::env;
use std::path::PathBuf;

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
    let router_build = var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "musl"
        && matches!(var("OPT_LEVEL").as_str(), "s" | "z");
    if !router_build {
        return;
    }
    let script = PathBuf::from(var("OUT_DIR")).join("discard-unwind-tables.ld");
    std::fs::write(&script, DISCARD_UNWIND_TABLES).expect("write the linker script");
    println!("cargo:rustc-link-arg-bin=storegate=-Wl,--no-eh-frame-hdr");
    println!(
        "cargo:rustc-link-arg-bin=storegate=-Wl,-T,{}",
        script.display()
    );
}
