//! Requests and tokens per minute: a sliding-window counter. Time is cut into fixed windows
//! aligned to the epoch; the count "in the last minute" is this window's count plus the
//! previous window's, weighted by how much of it still overlaps the last minute. Two numbers
//! and a start time per limit, whatever the traffic, and no burst of twice the limit at a
//! window boundary as plain fixed windows allow.
//!
//! All arithmetic is integer: weights are kept scaled by the window length.

use super::store;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    /// Start of the window `current` counts in (ms since the epoch, a multiple of its length).
    pub start_ms: u64,
    pub previous: u64,
    pub current: u64,
}

/// Taking `amount` now would exceed the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full {
    /// Milliseconds until it would fit; `None` when it never can (`amount` > the limit).
    pub wait_ms: Option<u64>,
    /// The weighted count now, rounded up, for messages.
    pub used: u64,
}

impl Window {
    pub fn decode(bytes: Option<&[u8]>) -> Window {
        store::decode(bytes).map_or_else(Window::default, |[start_ms, previous, current]| Window {
            start_ms,
            previous,
            current,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        store::encode([self.start_ms, self.previous, self.current])
    }

    /// The counter moved on to the window holding `now`.
    pub fn at(self, now_ms: u64, len_ms: u64) -> Window {
        let start = now_ms - now_ms % len_ms.max(1);
        if start <= self.start_ms {
            // Same window, or a writer with a later `now` already moved it on.
            self
        } else if start == self.start_ms + len_ms {
            Window {
                start_ms: start,
                previous: self.current,
                current: 0,
            }
        } else {
            Window {
                start_ms: start,
                previous: 0,
                current: 0,
            }
        }
    }

    /// The count over the last window length, times the length (exact, no rounding).
    fn scaled(&self, now_ms: u64, len_ms: u64) -> u128 {
        let elapsed = now_ms.saturating_sub(self.start_ms).min(len_ms);
        u128::from(self.previous) * u128::from(len_ms - elapsed)
            + u128::from(self.current) * u128::from(len_ms)
    }

    /// The count over the last window length, rounded up.
    pub fn used(&self, now_ms: u64, len_ms: u64) -> u64 {
        let w = self.at(now_ms, len_ms);
        let len = u128::from(len_ms.max(1));
        u64::try_from(w.scaled(now_ms, len_ms).div_ceil(len)).unwrap_or(u64::MAX)
    }

    /// Counts `amount` if the sliding count stays within `limit`.
    pub fn take(self, amount: u64, limit: u64, now_ms: u64, len_ms: u64) -> Result<Window, Full> {
        let w = self.at(now_ms, len_ms);
        let len = u128::from(len_ms);
        if w.scaled(now_ms, len_ms) + u128::from(amount) * len <= u128::from(limit) * len {
            return Ok(Window {
                current: w.current.saturating_add(amount),
                ..w
            });
        }
        Err(Full {
            wait_ms: w.wait_ms(amount, limit, now_ms, len_ms),
            used: w.used(now_ms, len_ms),
        })
    }

    /// How long until `amount` fits, for a window already moved to `now`.
    fn wait_ms(&self, amount: u64, limit: u64, now_ms: u64, len_ms: u64) -> Option<u64> {
        if amount > limit {
            return None;
        }
        let len = u128::from(len_ms);
        let elapsed = u128::from(now_ms.saturating_sub(self.start_ms).min(len_ms));
        let (previous, current) = (u128::from(self.previous), u128::from(self.current));
        let room = u128::from(limit - amount);
        let wait = if current <= room {
            // Fits in this window once the previous one's weight has faded enough:
            // previous * (len - elapsed - t) <= (room - current) * len.
            let excess = (previous * (len - elapsed)).saturating_sub((room - current) * len);
            if previous == 0 {
                0
            } else {
                excess.div_ceil(previous)
            }
        } else {
            // Needs the next window, where this one's count fades as the previous:
            // current * (len - s) <= room * len, after the rest of this window.
            let excess = (current * len).saturating_sub(room * len);
            (len - elapsed) + excess.div_ceil(current)
        };
        u64::try_from(wait).ok()
    }

    /// Replaces `reserved` counted in the window starting at `taken_in` with `actual` (0 to
    /// give a reservation back). Counts in windows that no longer matter are left alone.
    pub fn settle(
        self,
        taken_in: u64,
        reserved: u64,
        actual: u64,
        now_ms: u64,
        len_ms: u64,
    ) -> Window {
        let mut w = self.at(now_ms, len_ms);
        let fix = |n: u64| n.saturating_sub(reserved).saturating_add(actual);
        if taken_in == w.start_ms {
            w.current = fix(w.current);
        } else if taken_in.saturating_add(len_ms) == w.start_ms {
            w.previous = fix(w.previous);
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::test;

    const MIN: u64 = 60_000;
    /// An arbitrary minute boundary.
    const T0: u64 = 1_000 * MIN;

    fn w(start_ms: u64, previous: u64, current: u64) -> Window {
        Window {
            start_ms,
            previous,
            current,
        }
    }

    #[test]
    fn rolls_forward_by_window() {
        struct Case {
            name: &'static str,
            stored: Window,
            now: u64,
            expected: Window,
        }
        let table = [
            Case {
                name: "within the window: unchanged",
                stored: w(T0, 3, 5),
                now: T0 + 59_999,
                expected: w(T0, 3, 5),
            },
            Case {
                name: "the next window: current becomes previous",
                stored: w(T0, 3, 5),
                now: T0 + MIN,
                expected: w(T0 + MIN, 5, 0),
            },
            Case {
                name: "the end of the next window",
                stored: w(T0, 3, 5),
                now: T0 + MIN + 59_999,
                expected: w(T0 + MIN, 5, 0),
            },
            Case {
                name: "two windows later: both empty",
                stored: w(T0, 3, 5),
                now: T0 + 2 * MIN,
                expected: w(T0 + 2 * MIN, 0, 0),
            },
            Case {
                name: "a writer with a later clock moved it on: keep the newer window",
                stored: w(T0 + MIN, 3, 5),
                now: T0 + 59_000,
                expected: w(T0 + MIN, 3, 5),
            },
            Case {
                name: "a fresh state starts at now's window",
                stored: Window::default(),
                now: T0 + 5,
                expected: w(T0, 0, 0),
            },
        ];
        for case in table {
            assert_eq!(
                case.stored.at(case.now, MIN),
                case.expected,
                "{}: {:?} at {}",
                case.name,
                case.stored,
                case.now
            );
        }
    }

    #[test]
    fn previous_window_weighs_by_overlap() {
        let state = w(T0, 10, 2);
        for (now, used) in [
            (T0, 12),
            (T0 + 30_000, 7),
            (T0 + 54_000, 3),
            (T0 + 59_999, 3),
            (T0 + MIN, 2),
            (T0 + MIN + 30_000, 1),
            (T0 + 2 * MIN, 0),
        ] {
            assert_eq!(state.used(now, MIN), used, "at +{}", now - T0);
        }
    }

    #[test]
    fn takes_up_to_the_limit_then_refuses() {
        let mut state = Window::default();
        for i in 0..5 {
            state = state
                .take(1, 5, T0 + i * 1000, MIN)
                .unwrap_or_else(|e| panic!("request {i} refused: {e:?}"));
        }
        let full = state.take(1, 5, T0 + 10_000, MIN).unwrap_err();
        // The five fade out of the sliding minute only as the next window advances.
        assert_eq!(full.used, 5);
        assert_eq!(full.wait_ms, Some(50_000 + 12_000));
        // No double burst at the boundary: just after it the previous five still count.
        assert!(state.take(1, 5, T0 + MIN + 1, MIN).is_err());
        assert!(state.take(1, 5, T0 + MIN + 12_000, MIN).is_ok());
        // Tokens: a request larger than the whole limit can never fit.
        assert_eq!(
            Window::default().take(101, 100, T0, MIN),
            Err(Full {
                wait_ms: None,
                used: 0
            })
        );
    }

    #[test]
    fn wait_is_exactly_when_it_fits() {
        // Brute force over small states: after `wait_ms` the amount fits, a millisecond
        // before it does not.
        let len = 1_000;
        let base = 50 * len;
        for previous in 0..8 {
            for current in 0..8 {
                for elapsed in (0..len).step_by(37) {
                    for amount in 1..4 {
                        let limit = 6;
                        let state = w(base, previous, current);
                        let now = base + elapsed;
                        let Err(full) = state.take(amount, limit, now, len) else {
                            continue;
                        };
                        let wait = full.wait_ms.expect("amount <= limit");
                        assert!(wait > 0);
                        let case = format!("p={previous} c={current} e={elapsed} a={amount}");
                        assert!(state.take(amount, limit, now + wait, len).is_ok(), "{case}");
                        assert!(
                            state.take(amount, limit, now + wait - 1, len).is_err(),
                            "{case}: wait {wait} is not the first moment"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn settles_reservations_in_the_window_they_were_taken() {
        struct Case {
            name: &'static str,
            stored: Window,
            taken_in: u64,
            reserved: u64,
            actual: u64,
            now: u64,
            expected: Window,
        }
        let table = [
            Case {
                name: "used less than reserved",
                stored: w(T0, 0, 100),
                taken_in: T0,
                reserved: 100,
                actual: 30,
                now: T0 + 5,
                expected: w(T0, 0, 30),
            },
            Case {
                name: "used nothing",
                stored: w(T0, 0, 100),
                taken_in: T0,
                reserved: 100,
                actual: 0,
                now: T0 + 5,
                expected: w(T0, 0, 0),
            },
            Case {
                name: "used more than reserved",
                stored: w(T0, 0, 100),
                taken_in: T0,
                reserved: 100,
                actual: 250,
                now: T0 + 5,
                expected: w(T0, 0, 250),
            },
            Case {
                name: "settled after the window moved on: corrects the previous window",
                stored: w(T0, 0, 100),
                taken_in: T0,
                reserved: 100,
                actual: 30,
                now: T0 + MIN + 5,
                expected: w(T0 + MIN, 30, 0),
            },
            Case {
                name: "two windows later: no longer counts anywhere",
                stored: w(T0, 0, 100),
                taken_in: T0,
                reserved: 100,
                actual: 30,
                now: T0 + 2 * MIN,
                expected: w(T0 + 2 * MIN, 0, 0),
            },
            Case {
                name: "never below zero",
                stored: w(T0, 0, 10),
                taken_in: T0,
                reserved: 100,
                actual: 0,
                now: T0,
                expected: w(T0, 0, 0),
            },
        ];
        for case in table {
            assert_eq!(
                case.stored
                    .settle(case.taken_in, case.reserved, case.actual, case.now, MIN),
                case.expected,
                "{}: {:?} reserved {} actual {}",
                case.name,
                case.stored,
                case.reserved,
                case.actual
            );
        }
    }

    #[test]
    fn encodes_and_decodes() {
        let state = w(T0, 4, 9);
        assert_eq!(Window::decode(Some(&state.encode())), state);
        assert_eq!(Window::decode(Some(b"junk")), Window::default());
    }
}
