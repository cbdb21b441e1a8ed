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
    pub use crate::nlwire::*;

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

mod codec;
use codec::*;

#[cfg(test)]
mod tests;
