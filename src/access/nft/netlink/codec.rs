//! The pure half of `netlink`: encoding nf_tables batches and dump
//! requests, and reading the kernel's replies. Bytes in, bytes out; every
//! length is checked, so no input can make it panic.

use std::io;
use std::time::Duration;

use super::NlError;
use super::consts::*;

/// Milliseconds for NFTA_SET_ELEM_TIMEOUT, rounded up and at least 1 so
/// that a tiny timeout never reads as "no timeout".
pub(super) fn duration_to_ms(d: Duration) -> u64 {
    let ms = d.as_millis() + u128::from(!d.subsec_nanos().is_multiple_of(1_000_000));
    u64::try_from(ms).unwrap_or(u64::MAX).max(1)
}

// ---------------------------------------------------------------------
// Encoding (pure)
// ---------------------------------------------------------------------

/// One set-element change inside a batch.
#[derive(Debug, Clone, Copy)]
pub(super) enum ElemOp<'a> {
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
pub(super) struct Batch {
    pub(super) bytes: Vec<u8>,
    pub(super) begin_seq: u32,
    pub(super) end_seq: u32,
    /// The element messages, each of which asked for an ack.
    pub(super) acked: Vec<u32>,
}

pub(super) fn invalid(msg: String) -> NlError {
    NlError::Io(io::Error::new(io::ErrorKind::InvalidInput, msg))
}

pub(super) fn check_name(what: &str, name: &str) -> Result<(), NlError> {
    if name.is_empty() || name.len() >= NFT_NAME_MAXLEN || name.contains('\0') {
        return Err(invalid(format!("bad nftables {what} name {name:?}")));
    }
    Ok(())
}

pub(super) fn check_key(key: &[u8]) -> Result<(), NlError> {
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
pub(super) fn start_msg(
    buf: &mut Vec<u8>,
    ty: u16,
    flags: u16,
    seq: u32,
    family: u8,
    res_id: u16,
) -> usize {
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

pub(super) fn finish_msg(buf: &mut [u8], start: usize) {
    let len = (buf.len() - start) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

pub(super) fn put_attr(buf: &mut Vec<u8>, ty: u16, payload: &[u8]) {
    let len = (NLA_HDRLEN + payload.len()) as u16;
    buf.extend_from_slice(&len.to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(payload);
    buf.resize(align(buf.len()), 0);
}

pub(super) fn put_str(buf: &mut Vec<u8>, ty: u16, s: &str) {
    let mut bytes = Vec::with_capacity(s.len() + 1);
    bytes.extend_from_slice(s.as_bytes());
    bytes.push(0);
    put_attr(buf, ty, &bytes);
}

/// Opens a nested attribute; returns its offset for `end_nested`.
pub(super) fn begin_nested(buf: &mut Vec<u8>, ty: u16) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&0u16.to_ne_bytes());
    buf.extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
    start
}

pub(super) fn end_nested(buf: &mut [u8], start: usize) {
    let len = (buf.len() - start) as u16;
    buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
}

/// Appends one NEWSETELEM/DELSETELEM message carrying one element.
pub(super) fn put_elem_msg(buf: &mut Vec<u8>, seq: u32, table: &str, set: &str, op: &ElemOp<'_>) {
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
pub(super) fn encode_batch(
    first: u32,
    table: &str,
    set: &str,
    ops: &[ElemOp<'_>],
) -> Result<Batch, NlError> {
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
pub(super) fn encode_dump_request(seq: u32, table: &str, set: &str) -> Result<Vec<u8>, NlError> {
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
pub(super) struct RawMsg<'a> {
    pub(super) ty: u16,
    pub(super) flags: u16,
    pub(super) seq: u32,
    pub(super) payload: &'a [u8],
}

/// Splits a datagram into messages, checking every length.
pub(super) fn split_messages(buf: &[u8]) -> Result<Vec<RawMsg<'_>>, NlError> {
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
pub(super) fn split_attrs(buf: &[u8]) -> Result<Vec<(u16, &[u8])>, NlError> {
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

pub(super) fn find_attr<'a>(attrs: &[(u16, &'a [u8])], ty: u16) -> Option<&'a [u8]> {
    attrs.iter().find(|(t, _)| *t == ty).map(|(_, p)| *p)
}

/// The errno of an NLMSG_ERROR payload: 0 for an ack, else positive.
pub(super) fn error_code(payload: &[u8]) -> Result<i32, NlError> {
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
pub(super) fn parse_setelem_msg(payload: &[u8], keys: &mut Vec<Vec<u8>>) -> Result<(), NlError> {
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
pub(super) enum DumpStep {
    More { interrupted: bool },
    Done { interrupted: bool },
    Failed(i32),
}

/// Takes one datagram of a GETSETELEM dump with sequence number `seq`;
/// messages for other sequence numbers (stale replies) are skipped.
pub(super) fn absorb_dump(
    buf: &[u8],
    seq: u32,
    keys: &mut Vec<Vec<u8>>,
) -> Result<DumpStep, NlError> {
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
pub(super) struct AckState {
    pub(super) begin_seq: u32,
    pub(super) end_seq: u32,
    /// Element messages whose ack has not arrived.
    pub(super) pending: Vec<u32>,
    /// (seq, errno) of every failure, in arrival order.
    pub(super) errors: Vec<(u32, i32)>,
    /// The batch framing itself was refused: no further replies come.
    pub(super) aborted: bool,
}

impl AckState {
    pub(super) fn new(batch: &Batch) -> Self {
        Self {
            begin_seq: batch.begin_seq,
            end_seq: batch.end_seq,
            pending: batch.acked.clone(),
            errors: Vec::new(),
            aborted: false,
        }
    }

    pub(super) fn finished(&self) -> bool {
        self.aborted || self.pending.is_empty()
    }

    pub(super) fn first_error(&self) -> Option<i32> {
        self.errors.first().map(|&(_, errno)| errno)
    }

    pub(super) fn absorb(&mut self, buf: &[u8]) -> Result<(), NlError> {
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
