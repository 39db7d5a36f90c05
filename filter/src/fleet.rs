//! The gateway role's part in the `fleet` backend: it writes the filter state that names and
//! charges the rendered ratelimit filters' descriptors, turns their local replies into OpenAI
//! errors, and settles through the settle filter when the answer ends. The decisions are
//! `limits::fleet`'s; this moves values between them and the host. No shared data is read:
//! the counters are the service's.

use crate::host::Host;
use std::cell::RefCell;
use switchboard_core::api::ApiError;
use switchboard_core::limits::fleet::{
    self, Carry, Counted, End, Hold, Reply, Stage, LIMIT_HEADER, OVER_HEADER,
};
use switchboard_core::limits::{Estimate, Limits, Outcome, Refusal};

thread_local! {
    /// Each key's spend below one budget unit, carried to its next request on this worker.
    static CARRY: RefCell<Carry> = RefCell::new(Carry::default());
}

/// Why the gateway role answered a held request itself, from a ratelimit filter's reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stopped {
    /// That admission filter's call was over a limit: it counted nothing.
    By(Stage),
    /// An admission filter's call failed (fail-closed).
    ServiceFailed,
}

/// A request that holds fleet counters.
#[derive(Debug)]
pub struct FleetRequest {
    hold: Hold,
    stopped: Option<Stopped>,
}

/// What a ratelimit filter's local reply becomes.
pub enum Answer {
    /// A limit refused the request: 429, and a rejection to count.
    Refused(Refusal),
    /// The service failed: 503.
    Failed(ApiError),
}

impl FleetRequest {
    /// Admission: the filter state the ratelimit filters read. `None` when neither the key
    /// nor its team has a limit the fleet counts.
    pub fn reserve(
        host: &impl Host,
        limits: &Limits,
        key: usize,
        estimate: Estimate,
        now_ms: u64,
    ) -> Option<FleetRequest> {
        let (hold, state) = fleet::reserve(limits, key, estimate, now_ms)?;
        for (name, value) in state {
            host.set_property(&[name], value.as_bytes());
        }
        Some(FleetRequest {
            hold,
            stopped: None,
        })
    }

    /// The answer when the response is a ratelimit filter's local reply (a 429 it refused
    /// with, or its 500 when the service failed); `None` for any other response. Reads
    /// Envoy's `response.code_details` only for such statuses.
    pub fn local_reply(
        &mut self,
        host: &impl Host,
        limits: &Limits,
        status: u16,
        now_ms: u64,
    ) -> Option<Answer> {
        if status != 429 && status < 500 {
            return None;
        }
        let details = host.property(&["response", "code_details"])?;
        let details = String::from_utf8_lossy(&details);
        let limit_header = match details.as_ref() {
            "request_rate_limited" => host.response_header(LIMIT_HEADER),
            _ => None,
        };
        match fleet::local_reply(&details, limit_header.as_deref())? {
            Reply::Refused(stage) => {
                self.stopped = Some(Stopped::By(stage));
                let over = host
                    .response_header(OVER_HEADER)
                    .and_then(|h| fleet::parse_over(limits, self.hold.key, &h));
                let retry_after = host
                    .response_header("retry-after")
                    .and_then(|v| v.trim().parse().ok());
                Some(Answer::Refused(fleet::refusal(
                    limits,
                    &self.hold,
                    stage,
                    over,
                    retry_after,
                    now_ms,
                )))
            }
            Reply::ServiceFailed => {
                self.stopped = Some(Stopped::ServiceFailed);
                Some(Answer::Failed(fleet::service_failed()))
            }
        }
    }

    /// Settles when the answer ends: the filter state the settle filter sends (charges of the
    /// difference, refunds). Returns the admission filters that let the request through
    /// uncounted (misses), read from their dynamic metadata, which the service's answers set.
    pub fn settle(self, host: &impl Host, limits: &Limits, outcome: Outcome) -> Vec<Stage> {
        let refusing = match self.stopped {
            Some(Stopped::By(stage)) => Some(stage),
            _ => None,
        };
        let answered = |stage: Stage| {
            self.hold.feeds(stage)
                && refusing != Some(stage)
                && host
                    .property(&["metadata", "filter_metadata", stage.metadata_namespace()])
                    .is_some()
        };
        let counted = Counted {
            rate: answered(Stage::Rate),
            budget: answered(Stage::Budget),
        };
        let end = match self.stopped {
            Some(_) => End::Refused,
            None => End::Finished(outcome),
        };
        let settlement = CARRY.with(|carry| match carry.try_borrow_mut() {
            Ok(mut carry) => fleet::settle(limits, &self.hold, end, counted, &mut carry),
            // Only a re-entrant call could hold it: settle without carrying.
            Err(_) => fleet::settle(limits, &self.hold, end, counted, &mut Carry::default()),
        });
        for (name, value) in settlement.state {
            host.set_property(&[name], value.as_bytes());
        }
        settlement.missed
    }

    pub fn key(&self) -> usize {
        self.hold.key
    }
}
