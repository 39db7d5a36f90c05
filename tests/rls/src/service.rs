//! `envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit` over the store: the gRPC
//! service by hand (what tonic's code generator would write), and the answer a call gets.

use crate::limits::{charge, Charge, Limits};
use crate::proto::{
    Code, DescriptorStatus, Duration, HeaderValue, RateLimit, RateLimitRequest, RateLimitResponse,
    Struct, Unit as ProtoUnit, Value,
};
use crate::store::{Outcome, Store};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};
use switchboard_core::limits::fleet::service::Unit;
use switchboard_core::limits::fleet::{OVER_HEADER, SETTLE_METADATA};
use tonic::codegen::{http, Body, BoxFuture, Service, StdError};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Request, Response, Status};

const METHOD: &str = "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit";

/// The service's state: the limits (replaced on reload) and the store.
pub struct RateLimiter {
    pub limits: RwLock<Arc<Limits>>,
    pub store: Store,
    /// When an error was last logged (s since the epoch): at most one line a second.
    last_error_logged: AtomicU64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl RateLimiter {
    pub fn new(limits: Limits, store: Store) -> RateLimiter {
        RateLimiter {
            limits: RwLock::new(Arc::new(limits)),
            store,
            last_error_logged: AtomicU64::new(0),
        }
    }

    fn limits(&self) -> Arc<Limits> {
        match self.limits.read() {
            Ok(l) => l.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Answers one call; `settle`: the settle filter's (count all, refuse none).
    pub async fn should_rate_limit(
        &self,
        request: RateLimitRequest,
        settle: bool,
    ) -> Result<RateLimitResponse, Status> {
        let now = now_ms();
        let limits = self.limits();
        let charges: Vec<Option<Charge>> = request
            .descriptors
            .iter()
            .map(|d| charge(&limits, &request.domain, d, request.hits_addend, now))
            .collect();
        let applied: Vec<Charge> = charges.iter().flatten().cloned().collect();
        let outcome = match self.store.apply(&applied, settle).await {
            Ok(outcome) => outcome,
            Err(message) => {
                self.log_error(&message, now);
                return Err(Status::unavailable(format!(
                    "rate-limit counters unavailable: {message}"
                )));
            }
        };
        Ok(answer(&request, &charges, &outcome, now))
    }

    fn log_error(&self, message: &str, now: u64) {
        let second = now / 1000;
        if self.last_error_logged.swap(second, Ordering::Relaxed) != second {
            eprintln!("switchboard-rls: {message}");
        }
    }
}

/// The response to `request` whose descriptors had `charges` (`None`: no limit applies) and
/// whose store call went as `outcome`.
pub fn answer(
    request: &RateLimitRequest,
    charges: &[Option<Charge>],
    outcome: &Outcome,
    now_ms: u64,
) -> RateLimitResponse {
    let mut applied = 0usize;
    let mut first_over = None;
    let statuses = request
        .descriptors
        .iter()
        .zip(charges)
        .map(|(descriptor, charge)| {
            let Some(c) = charge else {
                return DescriptorStatus {
                    code: Code::Ok as i32,
                    ..DescriptorStatus::default()
                };
            };
            let index = applied;
            applied += 1;
            let over = outcome.over.contains(&index);
            if over && first_over.is_none() {
                first_over = Some(descriptor);
            }
            let counter = outcome.counters.get(index).copied().unwrap_or(0);
            let remaining = c.limit.amount.saturating_sub(counter);
            DescriptorStatus {
                code: if over { Code::OverLimit } else { Code::Ok } as i32,
                current_limit: Some(RateLimit {
                    requests_per_unit: u32::try_from(c.limit.amount).unwrap_or(u32::MAX),
                    unit: proto_unit(c.limit.unit) as i32,
                    name: c.limit.name.clone(),
                }),
                limit_remaining: if over {
                    0
                } else {
                    u32::try_from(remaining).unwrap_or(u32::MAX)
                },
                duration_until_reset: c.window_end_ms.map(|end| {
                    let ms = end.saturating_sub(now_ms);
                    Duration {
                        seconds: i64::try_from(ms / 1000).unwrap_or(i64::MAX),
                        nanos: i32::try_from((ms % 1000) * 1_000_000).unwrap_or(0),
                    }
                }),
            }
        })
        .collect();
    let mut response = RateLimitResponse {
        overall_code: Code::Ok as i32,
        statuses,
        ..RateLimitResponse::default()
    };
    if outcome.admitted {
        // Envoy keeps it as the filter's dynamic metadata: the sign the call was counted.
        let mut fields = HashMap::new();
        fields.insert(
            "counted".to_owned(),
            Value {
                string_value: Some("true".into()),
            },
        );
        response.dynamic_metadata = Some(Struct { fields });
    } else {
        response.overall_code = Code::OverLimit as i32;
        if let Some(d) = first_over {
            let named: Vec<String> = d
                .entries
                .iter()
                .map(|e| format!("{}={}", e.key, e.value))
                .collect();
            response.response_headers_to_add.push(HeaderValue {
                key: OVER_HEADER.into(),
                value: named.join(","),
            });
        }
    }
    response
}

fn proto_unit(unit: Unit) -> ProtoUnit {
    match unit {
        Unit::Second => ProtoUnit::Second,
        Unit::Minute => ProtoUnit::Minute,
        Unit::Hour => ProtoUnit::Hour,
        Unit::Day => ProtoUnit::Day,
        Unit::Week => ProtoUnit::Week,
        Unit::Month => ProtoUnit::Month,
        Unit::Year => ProtoUnit::Year,
        Unit::Total => ProtoUnit::Unknown,
    }
}

/// The gRPC service around a `RateLimiter`.
#[derive(Clone)]
pub struct RateLimitServer(pub Arc<RateLimiter>);

impl NamedService for RateLimitServer {
    const NAME: &'static str = "envoy.service.ratelimit.v3.RateLimitService";
}

struct ShouldRateLimit(Arc<RateLimiter>);

impl UnaryService<RateLimitRequest> for ShouldRateLimit {
    type Response = RateLimitResponse;
    type Future = BoxFuture<Response<RateLimitResponse>, Status>;

    fn call(&mut self, request: Request<RateLimitRequest>) -> Self::Future {
        let limiter = self.0.clone();
        let settle = request.metadata().get(SETTLE_METADATA).is_some();
        Box::pin(async move {
            limiter
                .should_rate_limit(request.into_inner(), settle)
                .await
                .map(Response::new)
        })
    }
}

impl<B> Service<http::Request<B>> for RateLimitServer
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let limiter = self.0.clone();
        if request.uri().path() != METHOD {
            let path = request.uri().path().to_owned();
            return Box::pin(async move {
                Ok(Status::unimplemented(format!("no method {path}")).into_http())
            });
        }
        Box::pin(async move {
            let mut grpc = Grpc::new(tonic_prost::ProstCodec::default());
            Ok(grpc.unary(ShouldRateLimit(limiter), request).await)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limit;
    use crate::proto::{Entry, RateLimitDescriptor};

    fn descriptor(entries: &[(&str, &str)]) -> RateLimitDescriptor {
        RateLimitDescriptor {
            entries: entries
                .iter()
                .map(|(k, v)| Entry {
                    key: (*k).into(),
                    value: (*v).into(),
                })
                .collect(),
            hits_addend: None,
            is_negative_hits: false,
        }
    }

    fn charge_of(amount: u64, unit: Unit, end: Option<u64>) -> Charge {
        Charge {
            counter: "c".into(),
            hits: 1,
            refund: false,
            limit: Limit {
                unit,
                amount,
                unlimited: false,
                shadow: false,
                name: String::new(),
            },
            window_end_ms: end,
        }
    }

    #[test]
    fn answers_name_the_descriptor_over_its_limit() {
        let request = RateLimitRequest {
            domain: "sb".into(),
            descriptors: vec![
                descriptor(&[("limit", "rpm"), ("key", "a")]),
                descriptor(&[("limit", "nothing")]),
                descriptor(&[("limit", "tpm"), ("team", "t")]),
            ],
            hits_addend: 0,
        };
        let charges = vec![
            Some(charge_of(3, Unit::Minute, Some(60_000))),
            None,
            Some(charge_of(5_000_000_000, Unit::Total, None)),
        ];
        let refused = Outcome {
            admitted: false,
            over: vec![1],
            counters: vec![2, 5_000_000_000],
        };
        let r = answer(&request, &charges, &refused, 45_500);
        assert_eq!(r.overall_code, Code::OverLimit as i32);
        let codes: Vec<i32> = r.statuses.iter().map(|s| s.code).collect();
        assert_eq!(codes, [1, 1, 2]);
        assert_eq!(r.statuses[0].limit_remaining, 1);
        assert_eq!(
            r.statuses[0].duration_until_reset,
            Some(Duration {
                seconds: 14,
                nanos: 500_000_000
            })
        );
        let total = r.statuses[2].current_limit.clone().unwrap();
        assert_eq!((total.requests_per_unit, total.unit), (u32::MAX, 0));
        assert_eq!(r.statuses[2].duration_until_reset, None);
        assert_eq!(
            r.response_headers_to_add,
            [HeaderValue {
                key: "x-switchboard-over".into(),
                value: "limit=tpm,team=t".into()
            }]
        );
        assert!(r.dynamic_metadata.is_none());

        let admitted = Outcome {
            admitted: true,
            over: vec![],
            counters: vec![3, 7],
        };
        let r = answer(&request, &charges, &admitted, 45_500);
        assert_eq!(r.overall_code, Code::Ok as i32);
        assert_eq!(r.statuses[0].limit_remaining, 0);
        assert!(r.response_headers_to_add.is_empty());
        assert!(r.dynamic_metadata.unwrap().fields.contains_key("counted"));
    }

    #[test]
    fn messages_use_envoys_field_numbers() {
        use prost::Message;
        // A descriptor as Envoy 1.40 sends a refund: entries (1), hits_addend (3, a wrapper),
        // is_negative_hits (4).
        let wire = [
            0x0a, 0x0c, // entries, 12 bytes
            0x0a, 0x05, b'l', b'i', b'm', b'i', b't', // key
            0x12, 0x03, b't', b'p', b'm', // value
            0x1a, 0x02, 0x08, 0x1e, // hits_addend { value: 30 }
            0x20, 0x01, // is_negative_hits: true
        ];
        let d = RateLimitDescriptor::decode(&wire[..]).unwrap();
        assert_eq!(d.entries[0].key, "limit");
        assert_eq!(d.hits_addend.map(|h| h.value), Some(30));
        assert!(d.is_negative_hits);
    }
}
