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
        for i in lo..=hi {
            if let Some((o, b, bit)) = self.words(i << 1 | 1) {
                *o &= !bit;
                *b &= !bit;
            }
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
