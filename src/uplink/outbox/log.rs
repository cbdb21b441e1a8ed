//! The outbox's append-only segment log: numbered segment files of
//! bounded size (`00000000000000000007.seg`), each a run of frames.
//!
//! A frame is `len: u32 LE | crc32(body): u32 LE | body`, and a body is
//! records `kind: u8 | seq: u64 LE | payload len: u32 LE | payload`. The
//! frame is the unit of atomicity: after a crash a frame is either whole
//! (its CRC matches) or cut off, and the scan on open truncates the last
//! segment at the first frame that is not whole. Records that must land
//! together (the events dropped for room and the gap event naming them)
//! share a frame.
//!
//! What lives in memory is a sparse index: per segment its file, size,
//! highest event number and the numbers of its events still queued, as
//! ranges; and, for the whole log, the numbers of the queued droppable
//! events. Bodies are read back from the files when they are delivered.
//!
//! Event records within one segment have rising numbers; an event that
//! comes back with an older number (a retried dead letter, a migrated
//! one) starts a new segment. A number is queued in at most one segment.
//! Segments are deleted oldest first once nothing in them is queued, so a
//! `Removed` record is never lost while an event it names is still in a
//! segment on disk.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::store::StoreError;

use super::ranges::{RangeSet, runs};

mod frame;
mod media;
mod read;

use frame::{
    FRAME_HEAD, MAX_FRAME, RECORD_HEAD, Record, encode_ranges, encode_record, frame, records,
};
pub(super) use frame::{Kind, decode_ranges};
use media::{Media, io_error};
pub(super) use media::{SyncHandle, sync_handle};

/// The size at which a new segment is started.
pub(super) const SEGMENT_BYTES: u64 = 4 << 20;
/// Events appended in one call are split into frames of about this size.
pub(super) const FRAME_TARGET: usize = 256 << 10;
struct Segment {
    media: Media,
    /// The log position of the segment's first byte.
    base: u64,
    len: u64,
    /// Highest event number written to it.
    max_seq: u64,
    /// Its events still queued.
    live: RangeSet,
    /// No queued event starts before this offset (a frame boundary).
    hint: u64,
}

/// What the scan on open found besides the index.
#[derive(Default)]
pub(super) struct Replay {
    /// One past the highest number any record or segment header names.
    pub next: u64,
    /// The highest number moved in from the old trees.
    pub migrated: u64,
    /// Numbers announced as being parked, and numbers retried from the
    /// dead letters, in the segments still on disk.
    pub parking: RangeSet,
    pub retried: RangeSet,
    /// Dead letters dropped for room.
    pub dead_dropped: RangeSet,
    /// A torn tail cut off the last segment: (file, bytes).
    pub torn: Option<(String, u64)>,
}

pub(super) struct Log {
    dir: Option<PathBuf>,
    segments: VecDeque<Segment>,
    next_id: u64,
    segment_bytes: u64,
    /// Queued droppable events, whichever segment holds them.
    pub droppable: RangeSet,
    /// Frames waiting to be written; the last one is still open.
    frames: Vec<Vec<u8>>,
    /// Per frame, the events it adds: (seq, droppable).
    frame_events: Vec<Vec<(u64, bool)>>,
    /// Numbers removed since the last `Removed` record was encoded.
    removed: Vec<u64>,
    /// Bytes written to segment files since open.
    pub bytes_written: u64,
    /// Syncs done inside the log (segment changes).
    pub syncs: u64,
    #[cfg(test)]
    pub fail_writes: bool,
}

fn segment_name(id: u64) -> String {
    format!("{id:020}.seg")
}

impl Log {
    /// Opens (creating) the log in `dir`, or an empty one in memory.
    pub fn open(dir: Option<&Path>, segment_bytes: u64) -> Result<(Log, Replay), StoreError> {
        let mut log = Log {
            dir: dir.map(Path::to_path_buf),
            segments: VecDeque::new(),
            next_id: 0,
            segment_bytes,
            droppable: RangeSet::default(),
            frames: Vec::new(),
            frame_events: Vec::new(),
            removed: Vec::new(),
            bytes_written: 0,
            syncs: 0,
            #[cfg(test)]
            fail_writes: false,
        };
        let mut replay = Replay {
            next: 1,
            ..Replay::default()
        };
        let Some(dir) = dir else {
            return Ok((log, replay));
        };
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, "creating", e))?;
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| io_error(dir, "listing", e))? {
            let entry = entry.map_err(|e| io_error(dir, "listing", e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if let Some(id) = name
                .strip_suffix(".seg")
                .filter(|s| s.len() == 20)
                .and_then(|s| s.parse::<u64>().ok())
            {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        let mut base = 0;
        for (i, id) in ids.iter().enumerate() {
            let path = dir.join(segment_name(*id));
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| io_error(&path, "opening", e))?;
            let seg = Segment {
                media: Media::Disk {
                    file: Arc::new(file),
                    path: path.clone(),
                },
                base,
                len: 0,
                max_seq: 0,
                live: RangeSet::default(),
                hint: 0,
            };
            let last = i + 1 == ids.len();
            log.segments.push_back(seg);
            let at = log.segments.len() - 1;
            let whole = log.replay_segment(at, &mut replay)?;
            let size = std::fs::metadata(&path)
                .map_err(|e| io_error(&path, "reading", e))?
                .len();
            if whole < size {
                if !last {
                    return Err(StoreError::Corrupt {
                        tree: "outbox",
                        reason: format!(
                            "segment {} is damaged at byte {whole} of {size} and is not the \
                             newest (move it aside to start without it)",
                            path.display()
                        ),
                    });
                }
                log.segments[at].media.truncate(whole)?;
                replay.torn = Some((path.display().to_string(), size - whole));
            }
            log.segments[at].len = whole;
            base += whole;
            log.next_id = id + 1;
        }
        if let Some(seg) = log.segments.back() {
            // What a killed process left in the page cache is made durable
            // now, so everything the index holds is on disk.
            if let Media::Disk { file, path } = &seg.media {
                file.sync_data().map_err(|e| io_error(path, "syncing", e))?;
            }
        }
        Ok((log, replay))
    }

    /// Reads segment `at` frame by frame, applying its records; returns
    /// the length of its whole frames.
    fn replay_segment(&mut self, at: usize, replay: &mut Replay) -> Result<u64, StoreError> {
        let mut off = 0;
        loop {
            let Some((body, next)) = self.read_frame(at, off)? else {
                return Ok(off);
            };
            let Some(recs) = records(&body) else {
                return Ok(off);
            };
            for r in recs {
                self.apply(at, &r, replay);
            }
            off = next;
        }
    }

    fn apply(&mut self, at: usize, r: &Record<'_>, replay: &mut Replay) {
        match r.kind {
            Kind::Header => replay.next = replay.next.max(r.seq),
            k if k.is_event() => {
                replay.next = replay.next.max(r.seq.saturating_add(1));
                let seg = &mut self.segments[at];
                seg.live.insert(r.seq);
                seg.max_seq = seg.max_seq.max(r.seq);
                if k.is_droppable() {
                    self.droppable.insert(r.seq);
                }
                if matches!(k, Kind::Retried | Kind::RetriedDroppable) {
                    replay.retried.insert(r.seq);
                    replay.parking.remove(r.seq);
                }
            }
            Kind::Removed => {
                for (f, l) in decode_ranges(r.payload) {
                    for seg in self.segments.iter_mut() {
                        seg.live.remove_range(f, l);
                    }
                    self.droppable.remove_range(f, l);
                }
            }
            Kind::Migrated => replay.migrated = replay.migrated.max(r.seq),
            Kind::Parking => {
                for (f, l) in decode_ranges(r.payload) {
                    replay.parking.insert_range(f, l);
                    replay.retried.remove_range(f, l);
                }
            }
            Kind::DeadDropped => {
                for (f, l) in decode_ranges(r.payload) {
                    replay.dead_dropped.insert_range(f, l);
                }
            }
            _ => {}
        }
    }

    /// The frame at `off` of segment `at`: its body and the offset after
    /// it; None at the end or at a frame that is not whole.
    fn read_frame(&self, at: usize, off: u64) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
        let media = &self.segments[at].media;
        let mut head = [0u8; FRAME_HEAD];
        if media.read_at(&mut head, off)? < FRAME_HEAD {
            return Ok(None);
        }
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if len == 0 || len > MAX_FRAME {
            return Ok(None);
        }
        let mut body = vec![0u8; len];
        if media.read_at(&mut body, off + FRAME_HEAD as u64)? < len || crc32fast::hash(&body) != crc
        {
            return Ok(None);
        }
        Ok(Some((body, off + (FRAME_HEAD + len) as u64)))
    }

    /// Makes sure there is a segment to append to, started with a header
    /// naming `next`.
    pub fn ensure_active(&mut self, next: u64) -> Result<(), StoreError> {
        match self.segments.back_mut() {
            None => self.new_segment(next),
            Some(seg) if seg.len == 0 => {
                let mut body = Vec::new();
                encode_record(&mut body, Kind::Header, next, &[]);
                let f = frame(&body);
                seg.media.write_at(&f, 0)?;
                seg.len = f.len() as u64;
                seg.hint = seg.len;
                self.bytes_written += f.len() as u64;
                Ok(())
            }
            Some(_) => Ok(()),
        }
    }

    /// Starts a segment after the current one, which is synced first.
    fn new_segment(&mut self, next: u64) -> Result<(), StoreError> {
        let base = self.end();
        if let Some(seg) = self.segments.back()
            && let Media::Disk { file, path } = &seg.media
        {
            file.sync_data().map_err(|e| io_error(path, "syncing", e))?;
            self.syncs += 1;
        }
        let id = self.next_id;
        let media = match &self.dir {
            Some(dir) => {
                let path = dir.join(segment_name(id));
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&path)
                    .map_err(|e| io_error(&path, "creating", e))?;
                Media::Disk {
                    file: Arc::new(file),
                    path,
                }
            }
            None => Media::Memory(Vec::new()),
        };
        self.next_id += 1;
        self.segments.push_back(Segment {
            media,
            base,
            len: 0,
            max_seq: 0,
            live: RangeSet::default(),
            hint: 0,
        });
        self.ensure_active(next)?;
        self.sync_dir()
    }

    fn sync_dir(&mut self) -> Result<(), StoreError> {
        if let Some(dir) = &self.dir {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io_error(dir, "syncing", e))?;
            self.syncs += 1;
        }
        Ok(())
    }

    /// The log position after the last byte written.
    pub fn end(&self) -> u64 {
        self.segments.back().map_or(0, |s| s.base + s.len)
    }

    /// What to sync to make everything written so far durable.
    pub fn sync_handle(&self) -> SyncHandle {
        match self.segments.back().map(|s| &s.media) {
            Some(Media::Disk { file, path }) => Some((file.clone(), path.clone())),
            _ => None,
        }
    }

    fn open_frame(&mut self) -> &mut Vec<u8> {
        if self.frames.is_empty() {
            self.frames.push(Vec::new());
            self.frame_events.push(Vec::new());
        }
        self.frames.last_mut().expect("just pushed")
    }

    /// Queues an event record in the open frame.
    pub fn push_event(&mut self, seq: u64, droppable: bool, retried: bool, json: &[u8]) {
        let kind = match (droppable, retried) {
            (false, false) => Kind::Event,
            (true, false) => Kind::Droppable,
            (false, true) => Kind::Retried,
            (true, true) => Kind::RetriedDroppable,
        };
        encode_record(self.open_frame(), kind, seq, json);
        if let Some(ev) = self.frame_events.last_mut() {
            ev.push((seq, droppable));
        }
    }

    /// Queues a record naming ranges of numbers.
    pub fn push_ranges(&mut self, kind: Kind, ranges: &[(u64, u64)]) {
        if !ranges.is_empty() {
            encode_record(self.open_frame(), kind, 0, &encode_ranges(ranges));
        }
    }

    pub fn push_migrated(&mut self, upto: u64) {
        encode_record(self.open_frame(), Kind::Migrated, upto, &[]);
    }

    /// Bytes in the open frame.
    pub fn open_frame_len(&self) -> usize {
        self.frames.last().map_or(0, Vec::len)
    }

    /// Puts the numbers removed so far in a `Removed` record.
    pub fn flush_removed(&mut self) {
        if self.removed.is_empty() {
            return;
        }
        let mut seqs = std::mem::take(&mut self.removed);
        seqs.sort_unstable();
        self.push_ranges(Kind::Removed, &runs(&seqs));
    }

    /// Closes the open frame; what comes next starts a new one.
    pub fn seal(&mut self) {
        if self.frames.last().is_some_and(|f| !f.is_empty()) {
            self.frames.push(Vec::new());
            self.frame_events.push(Vec::new());
        }
    }

    /// Writes every queued frame (not synced). `next` names the header of
    /// a segment started on the way.
    pub fn commit(&mut self, next: u64) -> Result<(), StoreError> {
        self.flush_removed();
        let frames = std::mem::take(&mut self.frames);
        let events = std::mem::take(&mut self.frame_events);
        for (body, evs) in frames.into_iter().zip(events) {
            if body.is_empty() {
                continue;
            }
            #[cfg(test)]
            if self.fail_writes {
                return Err(StoreError::Backend("disk full for the test".into()));
            }
            let f = frame(&body);
            // A new segment's header names the lowest number not yet
            // written: should the process die before this frame is, the
            // frame's numbers are used again, leaving no hole.
            let unwritten = evs.first().map_or(next, |(s, _)| next.min(*s));
            self.ensure_active(unwritten)?;
            let seg = self.segments.back().expect("ensured");
            let older = evs.first().is_some_and(|(s, _)| *s <= seg.max_seq);
            let header = (FRAME_HEAD + RECORD_HEAD) as u64;
            if older || (seg.len > header && seg.len + f.len() as u64 > self.segment_bytes) {
                self.new_segment(unwritten)?;
            }
            let seg = self.segments.back_mut().expect("ensured");
            if let Err(e) = seg.media.write_at(&f, seg.len) {
                // Best effort: a partly written frame would stop the scan
                // on open anyway.
                let _ = seg.media.truncate(seg.len);
                return Err(e);
            }
            seg.len += f.len() as u64;
            self.bytes_written += f.len() as u64;
            for (seq, droppable) in evs {
                seg.live.insert(seq);
                seg.max_seq = seg.max_seq.max(seq);
                if droppable {
                    self.droppable.insert(seq);
                }
            }
        }
        Ok(())
    }

    /// Takes a queued event out of the index (recorded on the next commit);
    /// Some(droppable) if it was queued.
    pub fn remove(&mut self, seq: u64) -> Option<bool> {
        let seg = self.segments.iter_mut().find(|s| s.live.contains(seq))?;
        seg.live.remove(seq);
        self.removed.push(seq);
        Some(self.droppable.remove(seq))
    }

    pub fn is_live(&self, seq: u64) -> bool {
        self.segments.iter().any(|s| s.live.contains(seq))
    }

    pub fn live_count(&self) -> usize {
        self.segments.iter().map(|s| s.live.len() as usize).sum()
    }

    /// Deletes the oldest segments while nothing in them is queued (never
    /// the one being appended to).
    pub fn collect(&mut self) -> Result<(), StoreError> {
        let mut deleted = false;
        while self.segments.len() > 1 && self.segments[0].live.is_empty() {
            let seg = self.segments.pop_front().expect("checked");
            if let Media::Disk { path, .. } = &seg.media {
                std::fs::remove_file(path).map_err(|e| io_error(path, "deleting", e))?;
                deleted = true;
            }
        }
        if deleted {
            self.sync_dir()?;
        }
        Ok(())
    }

    /// The lowest `n` queued numbers. Segments are visited lowest first
    /// and only while they can still hold one of the lowest `n`.
    pub fn first_live(&self, n: usize) -> Vec<u64> {
        let mut segs: Vec<(u64, &RangeSet)> = self
            .segments
            .iter()
            .filter_map(|s| Some((s.live.bounds()?.0, &s.live)))
            .collect();
        segs.sort_unstable_by_key(|(min, _)| *min);
        let mut all: Vec<u64> = Vec::new();
        for (min, live) in segs {
            if all.len() >= n && all.last().is_some_and(|l| *l < min) {
                break;
            }
            all.extend(live.first_n(n));
            all.sort_unstable();
            all.truncate(n);
        }
        all
    }

    /// The highest `n` queued numbers, in order.
    pub fn last_live(&self, n: usize) -> Vec<u64> {
        let mut segs: Vec<(u64, &RangeSet)> = self
            .segments
            .iter()
            .filter_map(|s| Some((s.live.bounds()?.1, &s.live)))
            .collect();
        segs.sort_unstable_by_key(|(max, _)| std::cmp::Reverse(*max));
        let mut all: Vec<u64> = Vec::new();
        for (max, live) in segs {
            if all.len() >= n && all.first().is_some_and(|f| *f > max) {
                break;
            }
            all.extend(live.last_n(n));
            all.sort_unstable();
            all = all.split_off(all.len().saturating_sub(n));
        }
        all
    }

    /// Segment files now (for the benchmark and tests).
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
}
