//! Which stream ids below the highest one the client used were opened, and how each closed
//! stream ended (§5.1): a window of two bits per odd id, relative to the highest peer stream
//! id, covering [`super::REMEMBERED_MIN`] ids or twice `max_concurrent_streams`, whichever is
//! more. The table of open streams is consulted first; this answers for the ids not in it:
//! never opened (implicitly closed by a higher id, §5.1.1), closed by us (the client's frames
//! in flight are ignored), or ended (further frames are STREAM_CLOSED errors). Ids below the
//! window are [`Remembered::Forgotten`]: the caller treats them as closed streams.
//!
//! Memory: `ceil(window / 64)` words per bit plane, both planes in one allocation made on the
//! first stream (an unused connection holds none); advancing the highest id clears the slots the window
//! moves onto, so each id's bits start "never opened".

use super::Closed;

/// What is known about a stream id at or below the highest peer stream id, not in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Remembered {
    /// Skipped by the client (implicitly closed, §5.1.1) — never carried a HEADERS.
    NeverOpened,
    Closed(Closed),
    /// Below the window: opened or not, it is closed now.
    Forgotten,
}

#[derive(Debug)]
pub(super) struct ClosedIds {
    /// Odd ids remembered (a multiple of 64).
    span: u32,
    /// Two planes of `span / 64` words. The first, a bit per odd id (`id >> 1` modulo
    /// `span`): a HEADERS opened it. The second, a bit per odd id: we closed it (RST_STREAM
    /// from us); else it ended (both END_STREAMs, or the client's RST_STREAM).
    bits: Box<[u64]>,
}

impl ClosedIds {
    /// Remembers at least `ids` odd ids (rounded up to a multiple of 64). Allocates nothing.
    pub(super) fn new(ids: u32) -> ClosedIds {
        ClosedIds {
            span: ids.max(64).div_ceil(64).saturating_mul(64),
            bits: Box::default(),
        }
    }

    /// The word index in the first plane and the bit of `id`.
    fn slot(&self, id: u32) -> (usize, u64) {
        let i = (id >> 1) % self.span;
        ((i / 64) as usize, 1u64 << (i % 64))
    }

    /// The words of both planes for `id`, and its bit.
    fn words(&mut self, id: u32) -> Option<(&mut u64, &mut u64, u64)> {
        let (w, bit) = self.slot(id);
        let plane = (self.span / 64) as usize;
        let (opened, by_us) = self.bits.split_at_mut(plane);
        Some((opened.get_mut(w)?, by_us.get_mut(w)?, bit))
    }

    /// The highest peer stream id moves from `from` to `to` (`to` > `from`): the slots of the
    /// ids in between (and `to` itself) are reset to "never opened".
    pub(super) fn advance(&mut self, from: u32, to: u32) {
        if self.bits.is_empty() {
            self.bits = vec![0; (self.span / 64) as usize * 2].into_boxed_slice();
        }
        let (lo, hi) = ((from >> 1) + u32::from(from != 0), to >> 1);
        if hi.saturating_sub(lo) >= self.span {
            self.bits.fill(0);
            return;
        }
        self.clear(lo % self.span, hi - lo + 1);
    }

    /// Clears `count` slots from `slot` on (wrapping at `span`), a word at a time: a client
    /// jumping ahead by almost the whole window per HEADERS costs `span / 64` word writes, not
    /// `span` bit operations. `span` is a multiple of 64, so no word straddles the wrap.
    fn clear(&mut self, mut slot: u32, mut count: u32) {
        let plane = (self.span / 64) as usize;
        while count > 0 {
            let bit = slot % 64;
            let n = (64 - bit).min(count);
            let mask = if n == 64 {
                u64::MAX
            } else {
                ((1u64 << n) - 1) << bit
            };
            let w = (slot / 64) as usize;
            if let Some(x) = self.bits.get_mut(w) {
                *x &= !mask;
            }
            if let Some(x) = self.bits.get_mut(plane + w) {
                *x &= !mask;
            }
            slot = (slot + n) % self.span;
            count -= n;
        }
    }

    /// Stream `id` (≤ the highest id, in the window) carried a HEADERS.
    pub(super) fn opened(&mut self, id: u32) {
        if let Some((o, _, bit)) = self.words(id) {
            *o |= bit;
        }
    }

    /// Stream `id` closed (`how`).
    pub(super) fn closed(&mut self, id: u32, last: u32, how: Closed) {
        if !self.in_window(id, last) {
            return;
        }
        if let Some((o, b, bit)) = self.words(id) {
            *o |= bit;
            match how {
                Closed::ByUs => *b |= bit,
                Closed::Ended => *b &= !bit,
            }
        }
    }

    fn in_window(&self, id: u32, last: u32) -> bool {
        id <= last && (last >> 1) - (id >> 1) < self.span && !self.bits.is_empty()
    }

    /// What is known about `id` (odd, ≤ `last`, not in the stream table).
    pub(super) fn get(&self, id: u32, last: u32) -> Remembered {
        if !self.in_window(id, last) {
            return Remembered::Forgotten;
        }
        let (w, bit) = self.slot(id);
        let plane = (self.span / 64) as usize;
        let opened = self.bits.get(w).is_some_and(|o| o & bit != 0);
        let by_us = self.bits.get(plane + w).is_some_and(|b| b & bit != 0);
        match (opened, by_us) {
            (false, _) => Remembered::NeverOpened,
            (true, true) => Remembered::Closed(Closed::ByUs),
            (true, false) => Remembered::Closed(Closed::Ended),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The window against a plain model (a map of every id ever seen), over jumps of every
    /// size including ones that wrap the ring and ones that skip it whole.
    #[test]
    fn matches_a_model_over_jumps_and_wraps() {
        use std::collections::HashMap;
        let mut c = ClosedIds::new(100); // rounded up to 128
        assert_eq!(c.span, 128);
        let mut model: HashMap<u32, Remembered> = HashMap::new();
        // odd ids, as a client's are
        let mut last = 1u32;
        c.advance(0, 1);
        c.opened(1);
        c.closed(1, 1, Closed::Ended);
        model.insert(1, Remembered::Closed(Closed::Ended));
        let mut x = 12345u32;
        for step in 0..5_000u32 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let jump = match x % 7 {
                0 => 2,
                1 => 2 * (x >> 8) % 256,
                2 => 2 * 127,
                3 => 2 * 128,
                4 => 2 * 129,
                _ => 2 * ((x >> 8) % 8 + 1),
            }
            .max(2);
            let id = last + jump;
            c.advance(last, id);
            c.opened(id);
            for skipped in (last + 2..id).step_by(2) {
                model.insert(skipped, Remembered::NeverOpened);
            }
            last = id;
            let how = if step % 3 == 0 {
                Closed::ByUs
            } else {
                Closed::Ended
            };
            c.closed(id, last, how);
            model.insert(id, Remembered::Closed(how));
            for back in (0..300).map(|k| k * 2) {
                let Some(q) = last.checked_sub(back) else {
                    break;
                };
                let expect = if back / 2 >= 128 {
                    Remembered::Forgotten
                } else {
                    model.get(&q).copied().unwrap_or(Remembered::NeverOpened)
                };
                assert_eq!(c.get(q, last), expect, "id {q}, last {last}");
            }
        }
    }
}
