//! The abuse counters of one connection (the limits are in [`super::super::limits`]): resets
//! over a sliding window of two buckets, control frames and empty frames per one-second
//! bucket each. Each `note_*` returns `true` when the limit is now exceeded; the connection
//! turns that into GOAWAY ENHANCE_YOUR_CALM with the matching `Abuse`. Time is milliseconds
//! since the connection was created, set once per `recv` by [`Counters::tick`].

use std::time::Instant;

use super::Limits;

#[derive(Debug)]
pub(super) struct Counters {
    epoch: Instant,
    now_ms: u64,
    /// Index of the current reset bucket (half a reset window long).
    reset_bucket: u64,
    resets_now: u32,
    resets_before: u32,
    /// The second the control frames are counted in.
    control_sec: u64,
    control: u32,
    /// The second the empty frames are counted in.
    empty_sec: u64,
    empty: u32,
}

impl Counters {
    pub(super) fn new(epoch: Instant) -> Counters {
        Counters {
            epoch,
            now_ms: 0,
            reset_bucket: 0,
            resets_now: 0,
            resets_before: 0,
            control_sec: 0,
            control: 0,
            empty_sec: 0,
            empty: 0,
        }
    }

    pub(super) fn tick(&mut self, now: Instant) {
        let ms = now.saturating_duration_since(self.epoch).as_millis();
        self.now_ms = u64::try_from(ms).unwrap_or(u64::MAX).max(self.now_ms);
    }

    /// A stream reset (by the client before our response ended, or by us). The count covers
    /// the current and the previous half-window buckets, i.e. between half a window and a
    /// whole one: a burst cannot hide across a bucket boundary.
    pub(super) fn note_reset(&mut self, limits: &Limits) -> bool {
        let bucket = self.now_ms / (limits.reset_window_ms / 2).max(1);
        if bucket != self.reset_bucket {
            self.resets_before = if bucket == self.reset_bucket + 1 {
                self.resets_now
            } else {
                0
            };
            self.resets_now = 0;
            self.reset_bucket = bucket;
        }
        self.resets_now = self.resets_now.saturating_add(1);
        self.resets_now.saturating_add(self.resets_before) > limits.max_resets_per_window
    }

    /// A control frame (SETTINGS, PING, PRIORITY, WINDOW_UPDATE on a closed stream, unknown).
    pub(super) fn note_control(&mut self, limits: &Limits) -> bool {
        let sec = self.now_ms / 1000;
        if sec != self.control_sec {
            self.control_sec = sec;
            self.control = 0;
        }
        self.control = self.control.saturating_add(1);
        self.control > limits.max_control_frames_per_sec
    }

    /// An empty frame (no payload, no END_STREAM / END_HEADERS): a rate, so a long-lived
    /// stream with an occasional empty frame never adds up to the limit.
    pub(super) fn note_empty(&mut self, limits: &Limits) -> bool {
        let sec = self.now_ms / 1000;
        if sec != self.empty_sec {
            self.empty_sec = sec;
            self.empty = 0;
        }
        self.empty = self.empty.saturating_add(1);
        self.empty > limits.max_empty_frames
    }
}
