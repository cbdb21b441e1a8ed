//! Reading queued events back from the segment files, frame by frame
//! from each segment's hint.

use crate::store::StoreError;

use super::Log;
use super::frame::{FRAME_HEAD, MAX_FRAME, records};

/// How much a read of frames pulls from the file at once.
const READ_CHUNK: usize = 64 << 10;

impl Log {
    /// Reads the queued events numbered `wanted` (sorted), in that order,
    /// stopping at the first that is missing or (with `limit`) ends past
    /// log position `limit`: (seq, droppable, JSON).
    pub fn read(
        &mut self,
        wanted: &[u64],
        limit: Option<u64>,
    ) -> Result<Vec<(u64, bool, Vec<u8>)>, StoreError> {
        let mut found: Vec<(u64, bool, Vec<u8>)> = Vec::with_capacity(wanted.len());
        for at in 0..self.segments.len() {
            let mine: Vec<u64> = wanted
                .iter()
                .copied()
                .filter(|s| self.segments[at].live.contains(*s))
                .collect();
            if !mine.is_empty() {
                self.read_segment(at, &mine, limit, &mut found)?;
            }
        }
        found.sort_unstable_by_key(|(s, _, _)| *s);
        let whole = found
            .iter()
            .zip(wanted)
            .take_while(|((s, _, _), w)| s == *w)
            .count();
        found.truncate(whole);
        Ok(found)
    }

    fn read_segment(
        &mut self,
        at: usize,
        mine: &[u64],
        limit: Option<u64>,
        found: &mut Vec<(u64, bool, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        let (base, len) = (self.segments[at].base, self.segments[at].len);
        let mut off = self.segments[at].hint;
        let mut at_hint = true;
        let mut left = mine.len();
        let mut buf: Vec<u8> = Vec::new();
        let mut buf_off = off;
        while left > 0 && off < len {
            // Refill so that the frame at `off` is in `buf` whole.
            let need = |buf: &Vec<u8>, buf_off: u64, off: u64| -> Option<usize> {
                let rel = (off - buf_off) as usize;
                let head = buf.get(rel..rel + FRAME_HEAD)?;
                let flen = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
                (buf.len() >= rel + FRAME_HEAD + flen).then_some(flen)
            };
            if need(&buf, buf_off, off).is_none() {
                let want = READ_CHUNK.max(self.frame_len_at(at, off)?);
                let want = want.min((len - off) as usize);
                buf.resize(want, 0);
                let n = self.segments[at].media.read_at(&mut buf, off)?;
                buf.truncate(n);
                buf_off = off;
            }
            let Some(flen) = need(&buf, buf_off, off) else {
                return Err(self.corrupt(at, off));
            };
            let rel = (off - buf_off) as usize;
            let crc = u32::from_le_bytes(buf[rel + 4..rel + 8].try_into().unwrap_or_default());
            let body = &buf[rel + FRAME_HEAD..rel + FRAME_HEAD + flen];
            let next = off + (FRAME_HEAD + flen) as u64;
            if limit.is_some_and(|l| base + next > l) {
                break;
            }
            if crc32fast::hash(body) != crc {
                return Err(self.corrupt(at, off));
            }
            let Some(recs) = records(body) else {
                return Err(self.corrupt(at, off));
            };
            let seg = &self.segments[at];
            let mut any_live = false;
            for r in recs.iter().filter(|r| r.kind.is_event()) {
                if seg.live.contains(r.seq) {
                    any_live = true;
                    if mine.binary_search(&r.seq).is_ok() {
                        found.push((r.seq, r.kind.is_droppable(), r.payload.to_vec()));
                        left -= 1;
                    }
                }
            }
            if at_hint && !any_live {
                self.segments[at].hint = next;
            } else {
                at_hint = false;
            }
            off = next;
        }
        Ok(())
    }

    fn frame_len_at(&self, at: usize, off: u64) -> Result<usize, StoreError> {
        let mut head = [0u8; FRAME_HEAD];
        self.segments[at].media.read_at(&mut head, off)?;
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        if len > MAX_FRAME {
            return Err(self.corrupt(at, off));
        }
        Ok(FRAME_HEAD + len)
    }

    fn corrupt(&self, at: usize, off: u64) -> StoreError {
        StoreError::Corrupt {
            tree: "outbox",
            reason: format!(
                "segment {} has a damaged frame at byte {off}",
                self.segments[at].media.name()
            ),
        }
    }
}
