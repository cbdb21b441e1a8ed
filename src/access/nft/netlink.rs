//! Set-element changes over `NETLINK_NETFILTER`: the hot path of authorise
//! and revoke.
//!
//! The table and its sets are installed once through `nft` (see `ruleset`);
//! afterwards a client's MAC goes in or out of a set with one netlink batch,
//! so no process is spawned and the cost does not grow with the number of
//! clients. Message building and reply parsing are pure functions over
//! bytes (tested without root); `NftSocket` is the thin I/O shell around
//! them.
//!
//! Wire shape of one change (every number native-endian unless noted):
//!
//! ```text
//! [nlmsghdr BATCH_BEGIN | nfgenmsg res_id=NFTABLES(be16)]
//! [nlmsghdr NFTABLES<<8|NEWSETELEM (REQUEST|CREATE|EXCL|ACK) | nfgenmsg family=inet
//!     TABLE "t\0"  SET "s\0"
//!     ELEMENTS(nested) { LIST_ELEM(nested) { KEY(nested) { VALUE bytes }  TIMEOUT be64 ms } } ]
//! [nlmsghdr BATCH_END | nfgenmsg res_id=NFTABLES(be16)]
//! ```
//!
//! nfnetlink answers every message that asked for an ack (or failed) only
//! after the whole batch ran, one `NLMSG_ERROR` each, matched here by
//! sequence number. If one message fails, the whole batch is rolled back,
//! though the others may still be acked with error 0.

use std::io;
use std::time::Duration;

use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};

/// Constants from the kernel's uapi headers.
mod consts {
    pub use crate::net::nlwire::*;

    // <linux/netlink.h>, beyond the shared ones
    pub const NLM_F_ACK: u16 = 0x04;
    pub const NLM_F_EXCL: u16 = 0x200;
    pub const NLM_F_CREATE: u16 = 0x400;

    // <linux/netfilter/nfnetlink.h>
    /// `sizeof(struct nfgenmsg)`: family u8, version u8, res_id be16.
    pub const NFGENMSG_LEN: usize = 4;
    pub const NFNETLINK_V0: u8 = 0;
    pub const NFNL_SUBSYS_NFTABLES: u16 = 10;
    /// `NLMSG_MIN_TYPE`.
    pub const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
    /// `NLMSG_MIN_TYPE + 1`.
    pub const NFNL_MSG_BATCH_END: u16 = 0x11;

    // <linux/netfilter.h>
    pub const NFPROTO_UNSPEC: u8 = 0;
    pub const NFPROTO_INET: u8 = 1;

    // <linux/netfilter/nf_tables.h>: enum nf_tables_msg_types
    pub const NFT_MSG_NEWSETELEM: u16 = 12;
    pub const NFT_MSG_GETSETELEM: u16 = 13;
    pub const NFT_MSG_DELSETELEM: u16 = 14;
    /// `NFT_NAME_MAXLEN`, including the terminating NUL.
    pub const NFT_NAME_MAXLEN: usize = 256;
    /// `NFT_DATA_VALUE_MAXLEN`: the longest key a set can hold.
    pub const NFT_DATA_VALUE_MAXLEN: usize = 64;
    // enum nft_list_attributes
    pub const NFTA_LIST_ELEM: u16 = 1;
    // enum nft_set_elem_list_attributes
    pub const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
    pub const NFTA_SET_ELEM_LIST_SET: u16 = 2;
    pub const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
    // enum nft_set_elem_attributes
    pub const NFTA_SET_ELEM_KEY: u16 = 1;
    pub const NFTA_SET_ELEM_FLAGS: u16 = 3;
    /// Big-endian u64, milliseconds.
    pub const NFTA_SET_ELEM_TIMEOUT: u16 = 4;
    // enum nft_set_elem_flags
    pub const NFT_SET_ELEM_INTERVAL_END: u32 = 0x1;
    // enum nft_data_attributes
    pub const NFTA_DATA_VALUE: u16 = 1;

    // <asm-generic/errno-base.h>, <asm-generic/errno.h>
    pub const ENOENT: i32 = 2;
    #[cfg(test)]
    pub const EEXIST: i32 = 17;

    // <bits/socket.h> (`recv` flag): report the real length of a datagram
    // that did not fit, so truncation is detected instead of parsed.
    pub const MSG_TRUNC: i32 = 0x20;
}

use consts::*;

/// Bytes for one receive. Netlink caps a dump part at 32 KiB, so a reply
/// longer than this is reported, never silently cut.
const RECV_BUF_LEN: usize = 64 * 1024;

/// How often a dump that the kernel marks inconsistent is restarted.
const DUMP_ATTEMPTS: usize = 4;

/// Why a set-element operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NlError {
    /// The socket failed, or an argument could not be encoded
    /// (`ErrorKind::InvalidInput`: a name with a NUL, an over-long key).
    #[error("netlink socket: {0}")]
    Io(#[from] io::Error),
    /// nf_tables refused the request.
    #[error("nf_tables {op}: {}", io::Error::from_raw_os_error(*.errno))]
    Kernel { errno: i32, op: &'static str },
    /// The kernel's reply did not parse.
    #[error("malformed netlink reply: {0}")]
    Malformed(String),
}

/// A netlink socket to nf_tables for set-element changes (the hot path of
/// authorise/revoke: no process spawned, O(1) per client).
pub struct NftSocket {
    sock: Socket,
    /// Sequence number of the next message sent.
    seq: u32,
    /// Our netlink port id (diagnostics; the socket is connected to the
    /// kernel, so nothing else can reach it).
    port_id: u32,
    /// Reused receive buffer, `RECV_BUF_LEN` bytes of capacity.
    rx: Vec<u8>,
    /// An exchange ended early (socket error, unparsable reply), so the
    /// socket may still hold its replies or a half-read dump, which would
    /// make the next dump fail with EBUSY: reopen before the next use.
    broken: bool,
}

impl std::fmt::Debug for NftSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NftSocket")
            .field("port_id", &self.port_id)
            .field("seq", &self.seq)
            .finish()
    }
}

impl NftSocket {
    pub fn open() -> Result<Self, NlError> {
        let (sock, port_id) = Self::connect()?;
        Ok(Self {
            sock,
            seq: 1,
            port_id,
            rx: Vec::with_capacity(RECV_BUF_LEN),
            broken: false,
        })
    }

    fn connect() -> Result<(Socket, u32), NlError> {
        let mut sock = Socket::new(NETLINK_NETFILTER)?;
        let addr = sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        // Errors then echo only the failed message's header, not all of it.
        // Old kernels lack the option; the replies are merely longer.
        let _ = sock.set_cap_ack(true);
        Ok((sock, addr.port_number()))
    }

    /// Runs one exchange, on a fresh socket if the last one ended early.
    fn exchange<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, NlError>,
    ) -> Result<T, NlError> {
        if self.broken {
            (self.sock, self.port_id) = Self::connect()?;
            self.broken = false;
        }
        let result = f(self);
        if matches!(result, Err(NlError::Io(_) | NlError::Malformed(_))) {
            self.broken = true;
        }
        result
    }

    /// Our netlink port id.
    pub fn port_id(&self) -> u32 {
        self.port_id
    }

    /// Adds `key` to set `set` of table `table` (family inet), with an
    /// optional per-element timeout (rounded up to whole milliseconds, at
    /// least 1 ms), replacing any element with that key so the new timeout
    /// applies.
    ///
    /// One batch of three messages: a non-exclusive add (succeeds whether
    /// or not the key is there), a delete (so it now surely succeeds), and
    /// the add that counts. Nothing in it can fail for an existing or
    /// missing key, so the kernel never has to abort the transaction; an
    /// abort costs a wait for an RCU grace period (milliseconds), a commit
    /// microseconds. Older kernels (5.15) keep an old timeout on a plain
    /// re-add, which this also avoids.
    pub fn add_element(
        &mut self,
        table: &str,
        set: &str,
        key: &[u8],
        timeout: Option<Duration>,
    ) -> Result<(), NlError> {
        let timeout_ms = timeout.map(duration_to_ms);
        let ensure = ElemOp::Add {
            key,
            timeout_ms,
            exclusive: false,
        };
        let add = ElemOp::Add {
            key,
            timeout_ms,
            exclusive: true,
        };
        match self.transact(table, set, &[ensure, ElemOp::Delete { key }, add])? {
            None => Ok(()),
            Some(errno) => Err(NlError::Kernel {
                errno,
                op: "add element",
            }),
        }
    }

    /// Removes `key` whether or not it is there, without a failing batch:
    /// a non-exclusive add then a delete (see `add_element` for why an
    /// abort is to be avoided on the hot path).
    pub fn remove_element(&mut self, table: &str, set: &str, key: &[u8]) -> Result<(), NlError> {
        let ensure = ElemOp::Add {
            key,
            timeout_ms: None,
            exclusive: false,
        };
        match self.transact(table, set, &[ensure, ElemOp::Delete { key }])? {
            None => Ok(()),
            Some(errno) => Err(NlError::Kernel {
                errno,
                op: "remove element",
            }),
        }
    }

    /// Removes `key`; returns `Ok(false)` if it was not there.
    pub fn delete_element(&mut self, table: &str, set: &str, key: &[u8]) -> Result<bool, NlError> {
        match self.transact(table, set, &[ElemOp::Delete { key }])? {
            None => Ok(true),
            Some(ENOENT) => Ok(false),
            Some(errno) => Err(NlError::Kernel {
                errno,
                op: "delete element",
            }),
        }
    }

    /// Lists the keys of every (unexpired) element in the set.
    pub fn list_elements(&mut self, table: &str, set: &str) -> Result<Vec<Vec<u8>>, NlError> {
        self.exchange(|s| s.dump_keys(table, set))
    }

    fn dump_keys(&mut self, table: &str, set: &str) -> Result<Vec<Vec<u8>>, NlError> {
        let mut keys = Vec::new();
        for _ in 0..DUMP_ATTEMPTS {
            keys.clear();
            let seq = self.next_seqs(1);
            let req = encode_dump_request(seq, table, set)?;
            self.send(&req)?;
            let mut interrupted = false;
            loop {
                self.recv()?;
                match absorb_dump(&self.rx, seq, &mut keys)? {
                    DumpStep::More { interrupted: i } => interrupted |= i,
                    DumpStep::Done { interrupted: i } => {
                        interrupted |= i;
                        break;
                    }
                    DumpStep::Failed(errno) => {
                        return Err(NlError::Kernel {
                            errno,
                            op: "list elements",
                        });
                    }
                }
            }
            if !interrupted {
                return Ok(keys);
            }
        }
        // The set kept changing under the dump; what we have is a
        // best-effort view, which is all a caller could get anyway.
        Ok(keys)
    }

    /// Sends `ops` as one batch and waits for every ack. Returns the first
    /// kernel errno (the batch was then rolled back), or `None`.
    fn transact(
        &mut self,
        table: &str,
        set: &str,
        ops: &[ElemOp<'_>],
    ) -> Result<Option<i32>, NlError> {
        self.exchange(|s| s.run_batch(table, set, ops))
    }

    fn run_batch(
        &mut self,
        table: &str,
        set: &str,
        ops: &[ElemOp<'_>],
    ) -> Result<Option<i32>, NlError> {
        let first = self.next_seqs(ops.len() as u32 + 2);
        let batch = encode_batch(first, table, set, ops)?;
        self.send(&batch.bytes)?;
        let mut acks = AckState::new(&batch);
        while !acks.finished() {
            self.recv()?;
            acks.absorb(&self.rx)?;
        }
        Ok(acks.first_error())
    }

    /// Reserves `n` consecutive sequence numbers; returns the first.
    fn next_seqs(&mut self, n: u32) -> u32 {
        let first = self.seq;
        self.seq = self.seq.wrapping_add(n);
        first
    }

    fn send(&self, bytes: &[u8]) -> Result<(), NlError> {
        let sent = self.sock.send(bytes, 0)?;
        if sent != bytes.len() {
            return Err(NlError::Io(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("netlink sent {sent} of {} bytes", bytes.len()),
            )));
        }
        Ok(())
    }

    /// Receives one datagram into `self.rx`.
    fn recv(&mut self) -> Result<(), NlError> {
        self.rx.clear();
        if self.rx.capacity() < RECV_BUF_LEN {
            self.rx.reserve(RECV_BUF_LEN);
        }
        let cap = self.rx.capacity();
        let len = loop {
            match self.sock.recv(&mut self.rx, MSG_TRUNC) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        if len > cap {
            return Err(NlError::Malformed(format!(
                "a {len}-byte datagram does not fit the {cap}-byte buffer"
            )));
        }
        Ok(())
    }
}

/// Milliseconds for NFTA_SET_ELEM_TIMEOUT, rounded up and at least 1 so
/// that a tiny timeout never reads as "no timeout".
fn duration_to_ms(d: Duration) -> u64 {
    let ms = d.as_millis() + u128::from(d.subsec_nanos() % 1_000_000 != 0);
    u64::try_from(ms).unwrap_or(u64::MAX).max(1)
}

// ---------------------------------------------------------------------
// Encoding (pure)
// ---------------------------------------------------------------------

/// One set-element change inside a batch.
#[derive(Debug, Clone, Copy)]
enum ElemOp<'a> {
    Add {
        key: &'a [u8],
        timeout_ms: Option<u64>,
        /// NLM_F_EXCL: fail with EEXIST instead of keeping the old element.
        exclusive: bool,
    },
    Delete {
        key: &'a [u8],
    },
}

/// An encoded batch and the sequence numbers it used.
#[derive(Debug)]
struct Batch {
    bytes: Vec<u8>,
    begin_seq: u32,
    end_seq: u32,
    /// The element messages, each of which asked for an ack.
    acked: Vec<u32>,
}

fn invalid(msg: String) -> NlError {
    NlError::Io(io::Error::new(io::ErrorKind::InvalidInput, msg))
}

fn check_name(what: &str, name: &str) -> Result<(), NlError> {
    if name.is_empty() || name.len() >= NFT_NAME_MAXLEN || name.contains('\0') {
        return Err(invalid(format!("bad nftables {what} name {name:?}")));
    }
    Ok(())
}

fn check_key(key: &[u8]) -> Result<(), NlError> {
    if key.is_empty() || key.len() > NFT_DATA_VALUE_MAXLEN {
        return Err(invalid(format!(
            "a set key must be 1..={NFT_DATA_VALUE_MAXLEN} bytes, not {}",
            key.len()
        )));
    }
    Ok(())
}

/// Appends a netlink header and nfgenmsg; returns the header's offset for
/// `finish_msg`.
fn start_msg(buf: &mut Vec<u8>, ty: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_len, patched later
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid: the kernel fills it in
    buf.push(family);
    buf.push(NFNETLINK_V0);
    buf.extend_from_slice(&res_id.to_be_bytes());
    start
}

fn finish_msg(buf: &mut [u8], start: usize) {
    let len = (buf.len() - start) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

fn put_attr(buf: &mut Vec<u8>, ty: u16, payload: &[u8]) {
    let len = (NLA_HDRLEN + payload.len()) as u16;
    buf.extend_from_slice(&len.to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(payload);
    buf.resize(align(buf.len()), 0);
}

fn put_str(buf: &mut Vec<u8>, ty: u16, s: &str) {
    let mut bytes = Vec::with_capacity(s.len() + 1);
    bytes.extend_from_slice(s.as_bytes());
    bytes.push(0);
    put_attr(buf, ty, &bytes);
}

/// Opens a nested attribute; returns its offset for `end_nested`.
fn begin_nested(buf: &mut Vec<u8>, ty: u16) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&0u16.to_ne_bytes());
    buf.extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
    start
}

fn end_nested(buf: &mut [u8], start: usize) {
    let len = (buf.len() - start) as u16;
    buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
}

/// Appends one NEWSETELEM/DELSETELEM message carrying one element.
fn put_elem_msg(buf: &mut Vec<u8>, seq: u32, table: &str, set: &str, op: &ElemOp<'_>) {
    let (msg, flags, key, timeout_ms) = match *op {
        ElemOp::Add {
            key,
            timeout_ms,
            exclusive,
        } => {
            let excl = if exclusive { NLM_F_EXCL } else { 0 };
            (NFT_MSG_NEWSETELEM, NLM_F_CREATE | excl, key, timeout_ms)
        }
        ElemOp::Delete { key } => (NFT_MSG_DELSETELEM, 0, key, None),
    };
    let ty = (NFNL_SUBSYS_NFTABLES << 8) | msg;
    let start = start_msg(
        buf,
        ty,
        NLM_F_REQUEST | NLM_F_ACK | flags,
        seq,
        NFPROTO_INET,
        0,
    );
    put_str(buf, NFTA_SET_ELEM_LIST_TABLE, table);
    put_str(buf, NFTA_SET_ELEM_LIST_SET, set);
    let elements = begin_nested(buf, NFTA_SET_ELEM_LIST_ELEMENTS);
    let elem = begin_nested(buf, NFTA_LIST_ELEM);
    let key_attr = begin_nested(buf, NFTA_SET_ELEM_KEY);
    put_attr(buf, NFTA_DATA_VALUE, key);
    end_nested(buf, key_attr);
    if let Some(ms) = timeout_ms {
        put_attr(buf, NFTA_SET_ELEM_TIMEOUT, &ms.to_be_bytes());
    }
    end_nested(buf, elem);
    end_nested(buf, elements);
    finish_msg(buf, start);
}

/// Encodes `ops` as one nfnetlink batch using sequence numbers `first`,
/// `first + 1`, … (begin, one per op, end).
fn encode_batch(first: u32, table: &str, set: &str, ops: &[ElemOp<'_>]) -> Result<Batch, NlError> {
    check_name("table", table)?;
    check_name("set", set)?;
    for op in ops {
        let (ElemOp::Add { key, .. } | ElemOp::Delete { key }) = op;
        check_key(key)?;
    }
    let mut bytes = Vec::with_capacity(64 + ops.len() * (96 + table.len() + set.len()));
    let begin_seq = first;
    let begin = start_msg(
        &mut bytes,
        NFNL_MSG_BATCH_BEGIN,
        NLM_F_REQUEST,
        begin_seq,
        NFPROTO_UNSPEC,
        NFNL_SUBSYS_NFTABLES,
    );
    finish_msg(&mut bytes, begin);
    let mut acked = Vec::with_capacity(ops.len());
    let mut seq = first;
    for op in ops {
        seq = seq.wrapping_add(1);
        put_elem_msg(&mut bytes, seq, table, set, op);
        acked.push(seq);
    }
    let end_seq = seq.wrapping_add(1);
    let end = start_msg(
        &mut bytes,
        NFNL_MSG_BATCH_END,
        NLM_F_REQUEST,
        end_seq,
        NFPROTO_UNSPEC,
        NFNL_SUBSYS_NFTABLES,
    );
    finish_msg(&mut bytes, end);
    Ok(Batch {
        bytes,
        begin_seq,
        end_seq,
        acked,
    })
}

/// A GETSETELEM dump request (not batched: reads need no transaction).
fn encode_dump_request(seq: u32, table: &str, set: &str) -> Result<Vec<u8>, NlError> {
    check_name("table", table)?;
    check_name("set", set)?;
    let mut buf = Vec::with_capacity(32 + table.len() + set.len());
    let ty = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETSETELEM;
    let start = start_msg(
        &mut buf,
        ty,
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
        NFPROTO_INET,
        0,
    );
    put_str(&mut buf, NFTA_SET_ELEM_LIST_TABLE, table);
    put_str(&mut buf, NFTA_SET_ELEM_LIST_SET, set);
    finish_msg(&mut buf, start);
    Ok(buf)
}

// ---------------------------------------------------------------------
// Parsing (pure, defensive: the kernel's lengths are checked, not trusted)
// ---------------------------------------------------------------------

/// One netlink message inside a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RawMsg<'a> {
    ty: u16,
    flags: u16,
    seq: u32,
    payload: &'a [u8],
}

/// Splits a datagram into messages, checking every length.
fn split_messages(buf: &[u8]) -> Result<Vec<RawMsg<'_>>, NlError> {
    let mut out = Vec::new();
    let mut rest = buf;
    while !rest.is_empty() {
        if rest.len() < NLMSG_HDRLEN {
            return Err(NlError::Malformed(format!(
                "{} trailing bytes after the last message",
                rest.len()
            )));
        }
        let len = u32_at(rest, 0).unwrap_or(0) as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            return Err(NlError::Malformed(format!(
                "message length {len} with {} bytes left",
                rest.len()
            )));
        }
        out.push(RawMsg {
            ty: u16_at(rest, 4).unwrap_or(0),
            flags: u16_at(rest, 6).unwrap_or(0),
            seq: u32_at(rest, 8).unwrap_or(0),
            payload: &rest[NLMSG_HDRLEN..len],
        });
        rest = &rest[align(len).min(rest.len())..];
    }
    Ok(out)
}

/// Splits an attribute stream into (type without flags, payload).
fn split_attrs(buf: &[u8]) -> Result<Vec<(u16, &[u8])>, NlError> {
    let mut out = Vec::new();
    let mut rest = buf;
    while !rest.is_empty() {
        if rest.len() < NLA_HDRLEN {
            return Err(NlError::Malformed(format!(
                "{} trailing bytes after the last attribute",
                rest.len()
            )));
        }
        let len = usize::from(u16_at(rest, 0).unwrap_or(0));
        if len < NLA_HDRLEN || len > rest.len() {
            return Err(NlError::Malformed(format!(
                "attribute length {len} with {} bytes left",
                rest.len()
            )));
        }
        let ty = u16_at(rest, 2).unwrap_or(0) & NLA_TYPE_MASK;
        out.push((ty, &rest[NLA_HDRLEN..len]));
        rest = &rest[align(len).min(rest.len())..];
    }
    Ok(out)
}

fn find_attr<'a>(attrs: &[(u16, &'a [u8])], ty: u16) -> Option<&'a [u8]> {
    attrs.iter().find(|(t, _)| *t == ty).map(|(_, p)| *p)
}

/// The errno of an NLMSG_ERROR payload: 0 for an ack, else positive.
fn error_code(payload: &[u8]) -> Result<i32, NlError> {
    let raw = payload
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .map(i32::from_ne_bytes)
        .ok_or_else(|| NlError::Malformed(format!("{}-byte error message", payload.len())))?;
    if raw > 0 || raw == i32::MIN {
        return Err(NlError::Malformed(format!("error code {raw}")));
    }
    Ok(-raw)
}

/// The keys of the elements in one NEWSETELEM message (a dump part).
fn parse_setelem_msg(payload: &[u8], keys: &mut Vec<Vec<u8>>) -> Result<(), NlError> {
    let attrs_bytes = payload
        .get(NFGENMSG_LEN..)
        .ok_or_else(|| NlError::Malformed("set-element message without nfgenmsg".into()))?;
    let attrs = split_attrs(attrs_bytes)?;
    let Some(elements) = find_attr(&attrs, NFTA_SET_ELEM_LIST_ELEMENTS) else {
        return Ok(());
    };
    for (ty, elem) in split_attrs(elements)? {
        if ty != NFTA_LIST_ELEM {
            continue;
        }
        let elem = split_attrs(elem)?;
        let flags = find_attr(&elem, NFTA_SET_ELEM_FLAGS)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes)
            .unwrap_or(0);
        if flags & NFT_SET_ELEM_INTERVAL_END != 0 {
            continue;
        }
        let key = find_attr(&elem, NFTA_SET_ELEM_KEY)
            .ok_or_else(|| NlError::Malformed("set element without a key".into()))?;
        let value = find_attr(&split_attrs(key)?, NFTA_DATA_VALUE)
            .ok_or_else(|| NlError::Malformed("set-element key without a value".into()))?;
        keys.push(value.to_vec());
    }
    Ok(())
}

/// Where a dump stands after one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DumpStep {
    More { interrupted: bool },
    Done { interrupted: bool },
    Failed(i32),
}

/// Takes one datagram of a GETSETELEM dump with sequence number `seq`;
/// messages for other sequence numbers (stale replies) are skipped.
fn absorb_dump(buf: &[u8], seq: u32, keys: &mut Vec<Vec<u8>>) -> Result<DumpStep, NlError> {
    let mut interrupted = false;
    for msg in split_messages(buf)? {
        if msg.seq != seq {
            continue;
        }
        interrupted |= msg.flags & NLM_F_DUMP_INTR != 0;
        match msg.ty {
            NLMSG_ERROR => match error_code(msg.payload)? {
                0 => {}
                errno => return Ok(DumpStep::Failed(errno)),
            },
            NLMSG_DONE => {
                // The payload, when present, is the dump's final status.
                if msg.payload.len() >= 4 {
                    let errno = error_code(msg.payload)?;
                    if errno != 0 {
                        return Ok(DumpStep::Failed(errno));
                    }
                }
                return Ok(DumpStep::Done { interrupted });
            }
            ty if ty == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWSETELEM => {
                parse_setelem_msg(msg.payload, keys)?;
            }
            _ => {}
        }
    }
    Ok(DumpStep::More { interrupted })
}

/// Collects the acks of one batch.
#[derive(Debug)]
struct AckState {
    begin_seq: u32,
    end_seq: u32,
    /// Element messages whose ack has not arrived.
    pending: Vec<u32>,
    /// (seq, errno) of every failure, in arrival order.
    errors: Vec<(u32, i32)>,
    /// The batch framing itself was refused: no further replies come.
    aborted: bool,
}

impl AckState {
    fn new(batch: &Batch) -> Self {
        Self {
            begin_seq: batch.begin_seq,
            end_seq: batch.end_seq,
            pending: batch.acked.clone(),
            errors: Vec::new(),
            aborted: false,
        }
    }

    fn finished(&self) -> bool {
        self.aborted || self.pending.is_empty()
    }

    fn first_error(&self) -> Option<i32> {
        self.errors.first().map(|&(_, errno)| errno)
    }

    fn absorb(&mut self, buf: &[u8]) -> Result<(), NlError> {
        for msg in split_messages(buf)? {
            if msg.ty != NLMSG_ERROR {
                continue;
            }
            let errno = error_code(msg.payload)?;
            if let Some(i) = self.pending.iter().position(|&s| s == msg.seq) {
                self.pending.swap_remove(i);
                if errno != 0 {
                    self.errors.push((msg.seq, errno));
                }
            } else if (msg.seq == self.begin_seq || msg.seq == self.end_seq) && errno != 0 {
                self.errors.push((msg.seq, errno));
                self.aborted = true;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x01];

    fn msgs(buf: &[u8]) -> Vec<RawMsg<'_>> {
        split_messages(buf).expect("well-formed")
    }

    #[test]
    fn batch_is_framed_by_begin_and_end() {
        let add = ElemOp::Add {
            key: &MAC,
            timeout_ms: Some(60_000),
            exclusive: true,
        };
        let batch = encode_batch(
            100,
            "storegate",
            "allowed",
            &[ElemOp::Delete { key: &MAC }, add],
        )
        .unwrap();
        assert_eq!(batch.begin_seq, 100);
        assert_eq!(batch.acked, vec![101, 102]);
        assert_eq!(batch.end_seq, 103);
        assert_eq!(batch.bytes.len() % 4, 0);
        let m = msgs(&batch.bytes);
        assert_eq!(m.len(), 4);
        assert_eq!(
            m.iter().map(|m| m.seq).collect::<Vec<_>>(),
            [100, 101, 102, 103]
        );

        // Begin/end: bare nfgenmsg, res_id = NFNL_SUBSYS_NFTABLES big-endian.
        for (msg, ty) in [(&m[0], 0x10), (&m[3], 0x11)] {
            assert_eq!(msg.ty, ty);
            assert_eq!(msg.flags, NLM_F_REQUEST);
            assert_eq!(msg.payload, [0, 0, 0, 10]);
        }
        assert_eq!(m[1].ty, (10 << 8) | 14);
        assert_eq!(m[1].flags, NLM_F_REQUEST | NLM_F_ACK);
        assert_eq!(m[2].ty, (10 << 8) | 12);
        assert_eq!(
            m[2].flags,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
        );
        // nfgenmsg: inet, version 0, res_id 0.
        assert_eq!(&m[2].payload[..4], [1, 0, 0, 0]);
    }

    #[test]
    fn element_message_is_laid_out_exactly() {
        let batch = encode_batch(
            7,
            "t",
            "set",
            &[ElemOp::Add {
                key: &MAC,
                timeout_ms: Some(0x0102_0304_0506_0708),
                exclusive: true,
            }],
        )
        .unwrap();
        let m = msgs(&batch.bytes);
        let p = m[1].payload;
        let ne16 = |v: u16| v.to_ne_bytes();
        let mut want = vec![1, 0, 0, 0]; // nfgenmsg
        // TABLE "t\0": len 6, padded to 8.
        want.extend(ne16(6));
        want.extend(ne16(1));
        want.extend(b"t\0\0\0");
        // SET "set\0": len 8, no padding.
        want.extend(ne16(8));
        want.extend(ne16(2));
        want.extend(b"set\0");
        // ELEMENTS { LIST_ELEM { KEY { VALUE mac } TIMEOUT } }
        want.extend(ne16(4 + 4 + 4 + 12 + 12));
        want.extend(ne16(3 | 0x8000));
        want.extend(ne16(4 + 4 + 12 + 12));
        want.extend(ne16(1 | 0x8000));
        want.extend(ne16(4 + 12)); // a nest's length includes inner padding
        want.extend(ne16(1 | 0x8000));
        want.extend(ne16(10)); // VALUE: 4 + 6, padded to 12
        want.extend(ne16(1));
        want.extend(MAC);
        want.extend([0, 0]);
        want.extend(ne16(12));
        want.extend(ne16(4));
        want.extend([1, 2, 3, 4, 5, 6, 7, 8]); // big-endian ms
        assert_eq!(p, &want[..]);
        // The nlmsg_len covers header + payload exactly.
        // (The element message follows the 20-byte batch-begin message.)
        assert_eq!(u32_at(&batch.bytes, 20).unwrap() as usize, 16 + want.len());
    }

    #[test]
    fn attributes_are_aligned_and_nested_flag_set() {
        let batch = encode_batch(1, "abcde", "s", &[ElemOp::Delete { key: &[1, 2, 3] }]).unwrap();
        let m = msgs(&batch.bytes);
        let attrs = split_attrs(&m[1].payload[4..]).unwrap();
        assert_eq!(find_attr(&attrs, 1).unwrap(), b"abcde\0");
        assert_eq!(find_attr(&attrs, 2).unwrap(), b"s\0");
        // Nested flag present on the wire.
        let raw = &m[1].payload[4..];
        let mut off = 0;
        let mut types = Vec::new();
        while off < raw.len() {
            let len = usize::from(u16_at(raw, off).unwrap());
            types.push(u16_at(raw, off + 2).unwrap());
            off += align(len);
        }
        assert_eq!(types, [1, 2, 3 | NLA_F_NESTED]);
        let elements = find_attr(&attrs, 3).unwrap();
        let elem = find_attr(&split_attrs(elements).unwrap(), 1).unwrap();
        let elem = split_attrs(elem).unwrap();
        assert!(find_attr(&elem, NFTA_SET_ELEM_TIMEOUT).is_none());
        let key = find_attr(&elem, 1).unwrap();
        assert_eq!(find_attr(&split_attrs(key).unwrap(), 1).unwrap(), [1, 2, 3]);
    }

    #[test]
    fn bad_arguments_are_refused_before_sending() {
        let del = [ElemOp::Delete { key: &MAC }];
        for (table, set) in [("", "s"), ("t\0x", "s"), ("t", &"s".repeat(256) as &str)] {
            let err = encode_batch(1, table, set, &del).unwrap_err();
            assert!(matches!(err, NlError::Io(ref e) if e.kind() == io::ErrorKind::InvalidInput));
        }
        assert!(encode_batch(1, "t", "s", &[ElemOp::Delete { key: &[] }]).is_err());
        assert!(encode_batch(1, "t", "s", &[ElemOp::Delete { key: &[0; 65] }]).is_err());
        assert!(encode_dump_request(1, "t", "").is_err());
    }

    #[test]
    fn timeouts_round_up_to_milliseconds() {
        assert_eq!(duration_to_ms(Duration::from_secs(60)), 60_000);
        assert_eq!(duration_to_ms(Duration::from_micros(1500)), 2);
        assert_eq!(duration_to_ms(Duration::ZERO), 1);
        assert_eq!(duration_to_ms(Duration::MAX), u64::MAX);
    }

    #[test]
    fn dump_request_layout() {
        let req = encode_dump_request(9, "tab", "s").unwrap();
        let m = msgs(&req);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].ty, (10 << 8) | 13);
        assert_eq!(m[0].flags, NLM_F_REQUEST | NLM_F_DUMP);
        assert_eq!(m[0].seq, 9);
        let attrs = split_attrs(&m[0].payload[4..]).unwrap();
        assert_eq!(attrs, vec![(1, &b"tab\0"[..]), (2, &b"s\0"[..])]);
    }

    // ---- replies ----

    fn reply(ty: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(((16 + payload.len()) as u32).to_ne_bytes());
        b.extend(ty.to_ne_bytes());
        b.extend(flags.to_ne_bytes());
        b.extend(seq.to_ne_bytes());
        b.extend(1234u32.to_ne_bytes());
        b.extend(payload);
        b.resize(align(b.len()), 0);
        b
    }

    fn err_reply(seq: u32, errno: i32) -> Vec<u8> {
        let mut payload = (-errno).to_ne_bytes().to_vec();
        payload.extend([0; 16]); // the echoed request header
        reply(NLMSG_ERROR, 0x100, seq, &payload)
    }

    /// A NEWSETELEM dump part with the given keys, built by the encoder.
    fn elem_reply(seq: u32, keys: &[&[u8]]) -> Vec<u8> {
        let mut b = Vec::new();
        let start = start_msg(&mut b, (10 << 8) | 12, 0x2, seq, 1, 0);
        put_str(&mut b, 1, "t");
        put_str(&mut b, 2, "s");
        let elements = begin_nested(&mut b, 3);
        for key in keys {
            let elem = begin_nested(&mut b, 1);
            let k = begin_nested(&mut b, 1);
            put_attr(&mut b, 1, key);
            end_nested(&mut b, k);
            put_attr(&mut b, 4, &60_000u64.to_be_bytes());
            end_nested(&mut b, elem);
        }
        end_nested(&mut b, elements);
        finish_msg(&mut b, start);
        b
    }

    #[test]
    fn acks_are_matched_by_sequence() {
        let batch = encode_batch(
            50,
            "t",
            "s",
            &[ElemOp::Delete { key: &MAC }, ElemOp::Delete { key: &MAC }],
        )
        .unwrap();
        let mut acks = AckState::new(&batch);
        // A stale reply for another request is ignored.
        acks.absorb(&err_reply(7, 0)).unwrap();
        acks.absorb(&err_reply(51, 0)).unwrap();
        assert!(!acks.finished());
        let mut two = err_reply(52, ENOENT);
        two.extend(err_reply(8, EEXIST));
        acks.absorb(&two).unwrap();
        assert!(acks.finished());
        assert_eq!(acks.first_error(), Some(ENOENT));
    }

    #[test]
    fn refused_batch_framing_ends_the_wait() {
        let batch = encode_batch(50, "t", "s", &[ElemOp::Delete { key: &MAC }]).unwrap();
        let mut acks = AckState::new(&batch);
        acks.absorb(&err_reply(50, 1)).unwrap();
        assert!(acks.finished());
        assert_eq!(acks.first_error(), Some(1));
    }

    #[test]
    fn dump_parts_and_done() {
        let mut keys = Vec::new();
        let mut part = elem_reply(5, &[&MAC, &[2, 0, 0, 0, 0, 2]]);
        part.extend(elem_reply(4, &[&[9; 6]])); // stale: other seq
        assert_eq!(
            absorb_dump(&part, 5, &mut keys).unwrap(),
            DumpStep::More { interrupted: false }
        );
        let done = reply(NLMSG_DONE, 0x2 | NLM_F_DUMP_INTR, 5, &0i32.to_ne_bytes());
        assert_eq!(
            absorb_dump(&done, 5, &mut keys).unwrap(),
            DumpStep::Done { interrupted: true }
        );
        assert_eq!(keys, vec![MAC.to_vec(), vec![2, 0, 0, 0, 0, 2]]);
        assert_eq!(
            absorb_dump(&err_reply(5, ENOENT), 5, &mut keys).unwrap(),
            DumpStep::Failed(ENOENT)
        );
        let failed_done = reply(NLMSG_DONE, 0x2, 5, &(-4i32).to_ne_bytes());
        assert_eq!(
            absorb_dump(&failed_done, 5, &mut keys).unwrap(),
            DumpStep::Failed(4)
        );
    }

    #[test]
    fn truncated_and_lying_replies_are_malformed() {
        let good = elem_reply(5, &[&MAC]);
        // Every truncation of a good message fails cleanly or (if it cuts
        // exactly at a message boundary) parses; it never panics.
        for cut in 0..good.len() {
            let mut buf = good[..cut].to_vec();
            // Keep the header's length honest to exercise the attribute parser.
            if cut >= 4 {
                buf[..4].copy_from_slice(&(cut as u32).to_ne_bytes());
            }
            let mut keys = Vec::new();
            let _ = absorb_dump(&buf, 5, &mut keys);
        }
        let mut lying = good.clone();
        lying[..4].copy_from_slice(&(good.len() as u32 + 4).to_ne_bytes());
        assert!(matches!(
            absorb_dump(&lying, 5, &mut Vec::new()),
            Err(NlError::Malformed(_))
        ));
        let mut tiny = good.clone();
        tiny[..4].copy_from_slice(&3u32.to_ne_bytes());
        assert!(matches!(split_messages(&tiny), Err(NlError::Malformed(_))));
        // An attribute claiming more than its message holds.
        let mut bad_attr = good.clone();
        let at = 16 + 4; // first attribute of the payload
        bad_attr[at..at + 2].copy_from_slice(&0xfff0u16.to_ne_bytes());
        assert!(matches!(
            absorb_dump(&bad_attr, 5, &mut Vec::new()),
            Err(NlError::Malformed(_))
        ));
        // Short error message and positive error code.
        assert!(matches!(
            AckState::new(&encode_batch(1, "t", "s", &[]).unwrap()).absorb(&reply(
                NLMSG_ERROR,
                0,
                1,
                &[1, 2]
            )),
            Err(NlError::Malformed(_))
        ));
        assert!(matches!(
            error_code(&5i32.to_ne_bytes()),
            Err(NlError::Malformed(_))
        ));
        // An element without a key.
        let mut b = Vec::new();
        let start = start_msg(&mut b, (10 << 8) | 12, 2, 5, 1, 0);
        let elements = begin_nested(&mut b, 3);
        let elem = begin_nested(&mut b, 1);
        put_attr(&mut b, 4, &1u64.to_be_bytes());
        end_nested(&mut b, elem);
        end_nested(&mut b, elements);
        finish_msg(&mut b, start);
        assert!(matches!(
            absorb_dump(&b, 5, &mut Vec::new()),
            Err(NlError::Malformed(_))
        ));
    }

    #[test]
    fn garbage_never_panics() {
        // A small deterministic generator; no dependency needed.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let template = elem_reply(5, &[&MAC, &MAC]);
        for _ in 0..20_000 {
            let mut buf = if next() % 2 == 0 {
                template.clone()
            } else {
                (0..(next() % 96) as usize).map(|_| next() as u8).collect()
            };
            let flips = next() % 4;
            for _ in 0..flips {
                if buf.is_empty() {
                    break;
                }
                let i = (next() as usize) % buf.len();
                buf[i] = next() as u8;
            }
            let _ = absorb_dump(&buf, 5, &mut Vec::new());
            let mut acks =
                AckState::new(&encode_batch(5, "t", "s", &[ElemOp::Delete { key: &MAC }]).unwrap());
            let _ = acks.absorb(&buf);
        }
    }

    #[test]
    fn kernel_error_names_the_errno() {
        let e = NlError::Kernel {
            errno: ENOENT,
            op: "delete element",
        };
        let text = e.to_string();
        assert!(text.contains("delete element"), "{text}");
        assert!(text.contains("No such file or directory"), "{text}");
    }

    // ---- against the real kernel (root only) ----

    fn is_root() -> bool {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Uid:"))
                    .and_then(|l| l.split_whitespace().nth(1).map(|e| e == "0"))
            })
            .unwrap_or(false)
    }

    fn nft(args: &[&str], stdin: Option<&str>) -> Result<String, String> {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut child = Command::new("nft")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("nft: {e}"))?;
        let mut pipe = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            pipe.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
        }
        drop(pipe);
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// A uniquely named scratch table, deleted on drop (also on panic).
    struct ScratchTable(String);

    impl ScratchTable {
        fn new() -> Self {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let name = format!("sgtest_{}_{n}", std::process::id());
            let ruleset = format!(
                "table inet {name} {{\n  set s {{\n    type ether_addr\n    flags timeout\n  }}\n}}\n"
            );
            nft(&["-f", "-"], Some(&ruleset)).expect("create the scratch table");
            Self(name)
        }

        /// Element value → timeout in seconds (None: no timeout).
        fn timeouts(&self) -> std::collections::HashMap<String, Option<u64>> {
            let json = nft(&["-j", "list", "set", "inet", &self.0, "s"], None).unwrap();
            let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
            let mut out = std::collections::HashMap::new();
            for item in doc["nftables"].as_array().unwrap() {
                let Some(elems) = item["set"]["elem"].as_array() else {
                    continue;
                };
                for e in elems {
                    if let Some(s) = e.as_str() {
                        out.insert(s.to_string(), None);
                    } else {
                        let inner = &e["elem"];
                        out.insert(
                            inner["val"].as_str().unwrap().to_string(),
                            inner["timeout"].as_u64(),
                        );
                    }
                }
            }
            out
        }
    }

    impl Drop for ScratchTable {
        fn drop(&mut self) {
            if let Err(e) = nft(&["delete", "table", "inet", &self.0], None) {
                eprintln!("could not delete scratch table {}: {e}", self.0);
            }
        }
    }

    #[test]
    fn root_set_elements_against_the_kernel() {
        if !is_root() {
            eprintln!(
                "skipping root_set_elements_against_the_kernel: needs root (effective uid 0)"
            );
            return;
        }
        let table = ScratchTable::new();
        let t = table.0.as_str();
        let a = [0x02, 0, 0x5e, 0, 0, 0x01];
        let b = [0x02, 0, 0x5e, 0, 0, 0x02];
        let mut sock = NftSocket::open().unwrap();

        sock.add_element(t, "s", &a, Some(Duration::from_secs(60)))
            .unwrap();
        sock.add_element(t, "s", &b, None).unwrap();
        let mut keys = sock.list_elements(t, "s").unwrap();
        keys.sort();
        assert_eq!(keys, vec![a.to_vec(), b.to_vec()]);
        let seen = table.timeouts();
        assert_eq!(seen["02:00:5e:00:00:01"], Some(60), "{seen:?}");
        assert_eq!(seen["02:00:5e:00:00:02"], None, "{seen:?}");

        // Re-adding replaces the element so the new timeout applies.
        sock.add_element(t, "s", &a, Some(Duration::from_secs(3600)))
            .unwrap();
        let seen = table.timeouts();
        assert_eq!(seen["02:00:5e:00:00:01"], Some(3600), "{seen:?}");
        // And back to no timeout at all.
        sock.add_element(t, "s", &a, None).unwrap();
        assert_eq!(table.timeouts()["02:00:5e:00:00:01"], None);
        assert_eq!(sock.list_elements(t, "s").unwrap().len(), 2);

        assert!(sock.delete_element(t, "s", &a).unwrap());
        assert_eq!(sock.list_elements(t, "s").unwrap(), vec![b.to_vec()]);
        assert!(!sock.delete_element(t, "s", &a).unwrap());
        // remove_element succeeds whether or not the key is there.
        sock.remove_element(t, "s", &a).unwrap();
        sock.remove_element(t, "s", &b).unwrap();
        assert!(sock.list_elements(t, "s").unwrap().is_empty());
        sock.add_element(t, "s", &b, None).unwrap();

        // A socket marked broken (an exchange that ended early) is
        // replaced transparently before the next operation.
        sock.broken = true;
        let old_port = sock.port_id();
        assert_eq!(sock.list_elements(t, "s").unwrap(), vec![b.to_vec()]);
        assert_ne!(sock.port_id(), old_port);

        // Errors name the errno; a missing set is ENOENT from the kernel.
        match sock.add_element(t, "nosuchset", &a, None) {
            Err(NlError::Kernel { errno, .. }) => assert_eq!(errno, ENOENT),
            other => panic!("expected ENOENT, got {other:?}"),
        }
        match sock.list_elements(t, "nosuchset") {
            Err(NlError::Kernel { errno, .. }) => assert_eq!(errno, ENOENT),
            other => panic!("expected ENOENT, got {other:?}"),
        }
        // A key of the wrong length is refused by the kernel (EINVAL), and
        // the socket stays usable afterwards.
        assert!(matches!(
            sock.add_element(t, "s", &[1, 2, 3], None),
            Err(NlError::Kernel { .. })
        ));
        assert_eq!(sock.list_elements(t, "s").unwrap(), vec![b.to_vec()]);
    }

    /// Records how this kernel treats a non-exclusive re-add of an existing
    /// element with a new timeout (not asserted: it differs by version).
    #[test]
    fn root_probe_non_exclusive_readd() {
        if !is_root() {
            eprintln!("skipping root_probe_non_exclusive_readd: needs root");
            return;
        }
        let table = ScratchTable::new();
        let t = table.0.as_str();
        let mut sock = NftSocket::open().unwrap();
        sock.add_element(t, "s", &MAC, Some(Duration::from_secs(60)))
            .unwrap();
        let readd = ElemOp::Add {
            key: &MAC,
            timeout_ms: Some(7_200_000),
            exclusive: false,
        };
        let result = sock.transact(t, "s", &[readd]).unwrap();
        let after = table.timeouts()["02:00:5e:10:00:01"];
        eprintln!(
            "non-exclusive re-add with a new timeout: errno {result:?}, timeout now {after:?} s (was 60)"
        );
        assert_eq!(result, None);
        let no_timeout = ElemOp::Add {
            key: &MAC,
            timeout_ms: None,
            exclusive: false,
        };
        let result = sock.transact(t, "s", &[no_timeout]).unwrap();
        let after = table.timeouts()["02:00:5e:10:00:01"];
        eprintln!(
            "non-exclusive re-add without a timeout: errno {result:?}, timeout now {after:?} s (was 7200)"
        );
        assert_eq!(result, None);
    }
}
