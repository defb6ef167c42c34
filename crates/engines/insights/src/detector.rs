//! The per-key start/end state machine, judged once per closed minute.

use crate::model::Thresholds;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// No insight, none starting.
    Idle,
    /// An insight starts at `start` (this minute or the one before).
    Start { start: u32 },
    /// The insight goes on; `quiet` tells whether this minute was under the lower threshold.
    Continue { quiet: bool },
    /// The insight ended at `end`, the first of the quiet minutes that closed it.
    End { end: u32 },
}

#[derive(Debug, Clone, Default)]
pub(crate) struct DetectorState {
    previous_count: u64,
    /// Whether the previous minute was at or above its own quiet threshold.
    previous_elevated: bool,
    active: bool,
    quiet_run: u32,
}

impl DetectorState {
    /// The state of a key whose insight is running, as saved by `running_parts`.
    pub(crate) fn resumed(previous_count: u64, previous_elevated: bool, quiet_run: u32) -> Self {
        Self {
            previous_count,
            previous_elevated,
            active: true,
            quiet_run,
        }
    }

    /// `(previous count, previous elevated, quiet run)`, to save a running insight.
    pub(crate) fn running_parts(&self) -> (u64, bool, u32) {
        (self.previous_count, self.previous_elevated, self.quiet_run)
    }

    /// Forgets the running insight (Insights was turned off for its type).
    pub(crate) fn stop(&mut self) {
        self.active = false;
        self.quiet_run = 0;
    }

    /// Judges `minute`, whose count is `count`; the engine calls this for every minute
    /// in order, zero counts included.
    pub(crate) fn step(
        &mut self,
        minute: u32,
        count: u64,
        thresholds: Thresholds,
        end_quiet_minutes: u32,
    ) -> Decision {
        let elevated = count >= u64::from(thresholds.quiet_below);
        let decision = if self.active {
            if elevated {
                self.quiet_run = 0;
                Decision::Continue { quiet: false }
            } else {
                self.quiet_run += 1;
                if self.quiet_run >= end_quiet_minutes {
                    self.active = false;
                    self.quiet_run = 0;
                    Decision::End {
                        end: minute + 1 - end_quiet_minutes,
                    }
                } else {
                    Decision::Continue { quiet: true }
                }
            }
        } else {
            let one = count >= u64::from(thresholds.one_minute);
            let two = self.previous_count + count >= u64::from(thresholds.two_minutes);
            if one || two {
                self.active = true;
                self.quiet_run = 0;
                let start = if self.previous_elevated && self.previous_count > 0 {
                    minute - 1
                } else {
                    minute
                };
                Decision::Start { start }
            } else {
                Decision::Idle
            }
        };
        self.previous_count = count;
        self.previous_elevated = elevated;
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds {
        one_minute: 10,
        two_minutes: 12,
        quiet_below: 4,
    };

    #[test]
    fn starts_on_one_high_minute_and_ends_after_the_quiet_run() {
        let mut state = DetectorState::default();
        assert_eq!(state.step(100, 1, T, 3), Decision::Idle);
        assert_eq!(state.step(101, 11, T, 3), Decision::Start { start: 101 });
        assert_eq!(
            state.step(102, 5, T, 3),
            Decision::Continue { quiet: false }
        );
        assert_eq!(state.step(103, 0, T, 3), Decision::Continue { quiet: true });
        assert_eq!(state.step(104, 0, T, 3), Decision::Continue { quiet: true });
        assert_eq!(state.step(105, 0, T, 3), Decision::End { end: 103 });
        assert_eq!(state.step(106, 0, T, 3), Decision::Idle);
    }

    #[test]
    fn two_elevated_minutes_start_at_the_first() {
        let mut state = DetectorState::default();
        assert_eq!(state.step(100, 6, T, 3), Decision::Idle);
        assert_eq!(state.step(101, 6, T, 3), Decision::Start { start: 100 });
    }

    #[test]
    fn a_loud_minute_resets_the_quiet_run() {
        let mut state = DetectorState::default();
        state.step(100, 20, T, 2);
        assert_eq!(state.step(101, 0, T, 2), Decision::Continue { quiet: true });
        assert_eq!(
            state.step(102, 9, T, 2),
            Decision::Continue { quiet: false }
        );
        assert_eq!(state.step(103, 0, T, 2), Decision::Continue { quiet: true });
        assert_eq!(state.step(104, 0, T, 2), Decision::End { end: 103 });
    }
}
