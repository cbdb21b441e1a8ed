//! The bytes of the log: frames and the records inside them (see the
//! log's header for the layout).

/// No frame is larger (a bigger length field means a corrupt file).
pub(super) const MAX_FRAME: usize = 16 << 20;
pub(super) const FRAME_HEAD: usize = 8;
pub(super) const RECORD_HEAD: usize = 13;

/// What a record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::uplink::outbox) enum Kind {
    /// First in each segment: the lowest number not yet written when it
    /// began, so a number is never reused even when every older segment
    /// is gone.
    Header = 0,
    /// A queued event (payload: its JSON).
    Event = 1,
    /// A queued event that is dropped first when the outbox is full.
    Droppable = 2,
    /// Events that left the queue: delivered, parked or dropped for room
    /// (payload: `[first, last]` ranges, u64 LE each).
    Removed = 3,
    /// Events moved in from the old key-value trees, up to `seq`.
    Migrated = 4,
    /// Events about to be parked as dead letters (ranges).
    Parking = 5,
    /// Dead letters dropped for room (ranges).
    DeadDropped = 6,
    /// A dead letter back in the queue (payload: its JSON).
    Retried = 7,
    /// The same, droppable.
    RetriedDroppable = 8,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        use Kind::*;
        [
            Header,
            Event,
            Droppable,
            Removed,
            Migrated,
            Parking,
            DeadDropped,
            Retried,
            RetriedDroppable,
        ]
        .get(usize::from(b))
        .copied()
    }

    pub fn is_event(self) -> bool {
        matches!(
            self,
            Kind::Event | Kind::Droppable | Kind::Retried | Kind::RetriedDroppable
        )
    }

    pub fn is_droppable(self) -> bool {
        matches!(self, Kind::Droppable | Kind::RetriedDroppable)
    }
}

/// One record read back.
pub(in crate::uplink::outbox) struct Record<'a> {
    pub kind: Kind,
    pub seq: u64,
    pub payload: &'a [u8],
}

/// Splits a frame body into records; None if it does not parse.
pub(super) fn records(mut body: &[u8]) -> Option<Vec<Record<'_>>> {
    let mut out = Vec::new();
    while !body.is_empty() {
        if body.len() < RECORD_HEAD {
            return None;
        }
        let kind = Kind::from_u8(body[0])?;
        let seq = u64::from_le_bytes(body[1..9].try_into().ok()?);
        let len = u32::from_le_bytes(body[9..13].try_into().ok()?) as usize;
        let payload = body.get(RECORD_HEAD..RECORD_HEAD + len)?;
        out.push(Record { kind, seq, payload });
        body = &body[RECORD_HEAD + len..];
    }
    Some(out)
}

/// `[first, last]` pairs of a ranges payload.
pub(in crate::uplink::outbox) fn decode_ranges(p: &[u8]) -> Vec<(u64, u64)> {
    p.chunks_exact(16)
        .map(|c| {
            let n = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or_default());
            (n(&c[..8]), n(&c[8..]))
        })
        .collect()
}

pub(super) fn encode_record(buf: &mut Vec<u8>, kind: Kind, seq: u64, payload: &[u8]) {
    buf.push(kind as u8);
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(payload);
}

pub(super) fn encode_ranges(ranges: &[(u64, u64)]) -> Vec<u8> {
    let mut p = Vec::with_capacity(ranges.len() * 16);
    for (f, l) in ranges {
        p.extend_from_slice(&f.to_le_bytes());
        p.extend_from_slice(&l.to_le_bytes());
    }
    p
}

pub(super) fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(FRAME_HEAD + body.len());
    f.extend_from_slice(&(body.len() as u32).to_le_bytes());
    f.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    f.extend_from_slice(body);
    f
}
