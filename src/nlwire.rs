//! Netlink framing shared by the nf_tables and neighbour-table code:
//! the generic constants of `<linux/netlink.h>` and bounds-checked
//! readers. Everything here is pure and never panics on short input.

/// `sizeof(struct nlmsghdr)`.
pub const NLMSG_HDRLEN: usize = 16;
/// `sizeof(struct nlattr)`.
pub const NLA_HDRLEN: usize = 4;
/// Messages and attributes are padded to this boundary.
pub const ALIGNTO: usize = 4;
pub const NLMSG_ERROR: u16 = 0x2;
pub const NLMSG_DONE: u16 = 0x3;
pub const NLM_F_REQUEST: u16 = 0x01;
pub const NLM_F_DUMP_INTR: u16 = 0x10;
/// `NLM_F_ROOT | NLM_F_MATCH`.
pub const NLM_F_DUMP: u16 = 0x300;
pub const NLA_F_NESTED: u16 = 1 << 15;
pub const NLA_F_NET_BYTEORDER: u16 = 1 << 14;
pub const NLA_TYPE_MASK: u16 = !(NLA_F_NESTED | NLA_F_NET_BYTEORDER);

/// Rounds a length up to the netlink alignment.
pub const fn align(len: usize) -> usize {
    (len + ALIGNTO - 1) & !(ALIGNTO - 1)
}

/// A native-endian u16 at `at`, if the buffer holds it.
pub fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

/// A native-endian u32 at `at`, if the buffer holds it.
pub fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_check_bounds() {
        let b = [1u8, 0, 0, 0, 2];
        assert_eq!(u32_at(&b, 0), Some(u32::from_ne_bytes([1, 0, 0, 0])));
        assert_eq!(u32_at(&b, 2), None);
        assert_eq!(u16_at(&b, 4), None);
        assert_eq!(u16_at(&b, usize::MAX), None);
        assert_eq!((align(0), align(1), align(4), align(5)), (0, 4, 4, 8));
    }
}
