//! Neighbour-table dumps (the kernel's bytes; the MACs and IPs in them
//! come from the LAN).
#![no_main]

use libfuzzer_sys::fuzz_target;
use storegate::net::neigh;

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    let _ = neigh::parse_dump(data, &mut out);
});
