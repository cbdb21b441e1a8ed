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
        eprintln!("skipping root_set_elements_against_the_kernel: needs root (effective uid 0)");
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
