//! Spend against a budget, in pico-dollars (1e-12 USD, the unit costs are computed in;
//! integers, so concurrent updates add exactly).
//!
//! A request first reserves its estimated cost; it is admitted only if what is spent plus
//! what is reserved by requests in flight plus its own estimate fits the cap. When it ends,
//! the reservation is replaced by the real cost. So concurrent requests can overshoot the cap
//! only by what their real costs exceed their estimates, never by a whole burst.

use super::store;
use crate::config::access::Period;

/// One US dollar in the unit budgets count in.
pub const PICOS_PER_USD: f64 = 1e12;
/// Largest budget: what a u64 of pico-dollars holds, with room to add.
pub const MAX_BUDGET_USD: f64 = 10_000_000.0;

/// Dollars to pico-dollars, rounded; negative and non-finite amounts count as 0.
pub fn picos(usd: f64) -> u64 {
    if usd.is_finite() && usd > 0.0 {
        (usd * PICOS_PER_USD).round() as u64
    } else {
        0
    }
}

pub fn usd(picos: u64) -> f64 {
    picos as f64 / PICOS_PER_USD
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ledger {
    /// Start of the period `spent` belongs to.
    pub period_start_ms: u64,
    pub spent: u64,
    /// Estimates of requests in flight (not tied to a period: they are still running).
    pub reserved: u64,
}

/// The budget cannot take this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exhausted {
    /// When the period resets (`None` for a total budget).
    pub resets_at_ms: Option<u64>,
    pub spent: u64,
}

impl Ledger {
    pub fn decode(bytes: Option<&[u8]>) -> Ledger {
        store::decode(bytes).map_or_else(Ledger::default, |[period_start_ms, spent, reserved]| {
            Ledger {
                period_start_ms,
                spent,
                reserved,
            }
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        store::encode([self.period_start_ms, self.spent, self.reserved])
    }

    /// The ledger in the period holding `now`: a new period starts with nothing spent.
    pub fn at(self, period: Period, now_ms: u64) -> Ledger {
        let start = period.start(now_ms);
        if start > self.period_start_ms {
            Ledger {
                period_start_ms: start,
                spent: 0,
                reserved: self.reserved,
            }
        } else {
            self
        }
    }

    /// Reserves `estimate` if spent + in flight + estimate stays within `cap`.
    pub fn reserve(
        self,
        estimate: u64,
        cap: u64,
        period: Period,
        now_ms: u64,
    ) -> Result<Ledger, Exhausted> {
        let l = self.at(period, now_ms);
        let committed = l.spent.saturating_add(l.reserved);
        if l.spent >= cap || committed.saturating_add(estimate) > cap {
            return Err(Exhausted {
                resets_at_ms: period.end(now_ms),
                spent: l.spent,
            });
        }
        Ok(Ledger {
            reserved: l.reserved.saturating_add(estimate),
            ..l
        })
    }

    /// Replaces a reservation by the real cost (0 to release it).
    pub fn settle(self, reserved: u64, actual: u64, period: Period, now_ms: u64) -> Ledger {
        let l = self.at(period, now_ms);
        Ledger {
            spent: l.spent.saturating_add(actual),
            reserved: l.reserved.saturating_sub(reserved),
            ..l
        }
    }

    /// What is left of `cap` after spend and reservations.
    pub fn remaining(&self, cap: u64) -> u64 {
        cap.saturating_sub(self.spent.saturating_add(self.reserved))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::time::{days_from_civil, DAY_MS};
    use crate::testkit::test;

    const USD: u64 = 1_000_000_000_000;

    fn day(n: i64) -> u64 {
        (days_from_civil(2026, 3, 1) + n) as u64 * DAY_MS
    }

    fn ledger(period_start_ms: u64, spent: u64, reserved: u64) -> Ledger {
        Ledger {
            period_start_ms,
            spent,
            reserved,
        }
    }

    #[test]
    fn converts_dollars() {
        assert_eq!(picos(1.5), 1_500_000_000_000);
        assert_eq!(picos(0.000_000_15), 150_000);
        assert_eq!(picos(-1.0), 0);
        assert_eq!(picos(f64::NAN), 0);
        assert_eq!(picos(MAX_BUDGET_USD), 10_000_000 * 1_000_000_000_000);
        assert!((usd(2_500_000_000_000) - 2.5).abs() < 1e-12);
    }

    #[test]
    fn reserves_while_spend_plus_flight_fits() {
        let cap = 10 * USD;
        let now = day(3);
        struct Case {
            name: &'static str,
            ledger: Ledger,
            estimate: u64,
            admitted: bool,
        }
        let table = [
            Case {
                name: "an estimate of the whole cap",
                ledger: ledger(day(0), 0, 0),
                estimate: 10 * USD,
                admitted: true,
            },
            Case {
                name: "an estimate just over the cap",
                ledger: ledger(day(0), 0, 0),
                estimate: 10 * USD + 1,
                admitted: false,
            },
            Case {
                name: "spend, flight and estimate reach the cap",
                ledger: ledger(day(0), 6 * USD, 3 * USD),
                estimate: USD,
                admitted: true,
            },
            Case {
                name: "spend, flight and estimate just over the cap",
                ledger: ledger(day(0), 6 * USD, 3 * USD),
                estimate: USD + 1,
                admitted: false,
            },
            Case {
                name: "a spent budget refuses even a free request",
                ledger: ledger(day(0), 10 * USD, 0),
                estimate: 0,
                admitted: false,
            },
            Case {
                name: "a free request while some budget is left",
                ledger: ledger(day(0), 9 * USD, 0),
                estimate: 0,
                admitted: true,
            },
        ];
        for case in table {
            let l = case.ledger;
            let r = l.reserve(case.estimate, cap, Period::Month, now);
            assert_eq!(
                r.is_ok(),
                case.admitted,
                "{}: {l:?} + {}",
                case.name,
                case.estimate
            );
            if let Ok(after) = r {
                assert_eq!(after.reserved, l.reserved + case.estimate, "{}", case.name);
            }
        }
        let err = ledger(day(0), 10 * USD, 0)
            .reserve(1, cap, Period::Month, now)
            .unwrap_err();
        assert_eq!(
            err.resets_at_ms,
            Some((days_from_civil(2026, 4, 1)) as u64 * DAY_MS)
        );
        let total = ledger(0, 10 * USD, 0).reserve(1, cap, Period::Total, now);
        assert_eq!(total.unwrap_err().resets_at_ms, None);
    }

    #[test]
    fn settles_to_the_real_cost() {
        let l = ledger(day(0), USD, 3 * USD);
        struct Case {
            name: &'static str,
            reserved: u64,
            actual: u64,
            expected: Ledger,
        }
        let table = [
            Case {
                name: "cost less than reserved",
                reserved: 2 * USD,
                actual: USD / 2,
                expected: ledger(day(0), USD + USD / 2, USD),
            },
            Case {
                name: "cost nothing",
                reserved: 2 * USD,
                actual: 0,
                expected: ledger(day(0), USD, USD),
            },
            Case {
                name: "cost more than reserved",
                reserved: 2 * USD,
                actual: 5 * USD,
                expected: ledger(day(0), 6 * USD, USD),
            },
            Case {
                name: "releasing more than is in flight leaves none",
                reserved: 4 * USD,
                actual: USD,
                expected: ledger(day(0), 2 * USD, 0),
            },
        ];
        for case in table {
            assert_eq!(
                l.settle(case.reserved, case.actual, Period::Month, day(2)),
                case.expected,
                "{}",
                case.name
            );
        }
        assert_eq!(l.remaining(10 * USD), 6 * USD);
        assert_eq!(l.remaining(USD), 0);
    }

    #[test]
    fn periods_reset_spend_but_keep_flight() {
        let l = ledger(day(0), 5 * USD, 2 * USD);
        // Next day: a daily budget starts over; the in-flight reservation still counts.
        let next = l.at(Period::Day, day(1) + 5);
        assert_eq!(next, ledger(day(1), 0, 2 * USD));
        assert_eq!(l.at(Period::Day, day(0) + DAY_MS - 1), l);
        // A reservation taken yesterday settles into today's spend.
        let settled = l.settle(2 * USD, USD, Period::Day, day(1));
        assert_eq!(settled, ledger(day(1), USD, 0));
        // Weekly and monthly budgets keep the spend within their period.
        assert_eq!(l.at(Period::Month, day(20)).spent, 5 * USD);
        assert_eq!(l.at(Period::Month, day(31)).spent, 0);
        assert_eq!(l.at(Period::Total, day(400)).spent, 5 * USD);
        // 2026-03-01 is a Sunday: the week turns on the 2nd.
        let week = Ledger::default().at(Period::Week, day(0));
        assert_eq!(week.at(Period::Week, day(1)).period_start_ms, day(1));
    }

    #[test]
    fn encodes_and_decodes() {
        let l = ledger(day(0), 7, 9);
        assert_eq!(Ledger::decode(Some(&l.encode())), l);
        assert_eq!(Ledger::decode(None), Ledger::default());
    }
}
