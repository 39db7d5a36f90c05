//! The only code that talks to Envoy. It moves bytes between the host and `flow`, and owns
//! nothing but per-request state.

mod env;
mod gateway;
mod handoff;
mod metrics;
mod shared;
mod upstream;

use crate::config::{Gateway, Role};
use crate::flow::metrics::Labels;
use metrics::EnvoyMetrics;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

/// Header the gateway role sets to pick the model group's cluster.
pub const CLUSTER_HEADER: &str = "x-switchboard-cluster";
/// Header carrying the gateway's per-request handoff id to the upstream role.
const HANDOFF_HEADER: &str = "x-switchboard-request";
/// Response header by which the upstream role tells the gateway role an answer is already
/// in OpenAI's shape. Never reaches clients.
const TRANSLATED_HEADER: &str = "x-switchboard-translated";
/// How often counters gathered in the VM are handed to Envoy's stats.
const METRICS_FLUSH: Duration = Duration::from_secs(1);
/// Prefix of every header that is ours; clients cannot send them.
const OWN_PREFIX: &str = "x-switchboard-";
/// Endpoint metadata path naming the deployment Envoy picked for this attempt.
const DEPLOYMENT_PROPERTY: [&str; 5] = [
    "xds",
    "upstream_host_metadata",
    "filter_metadata",
    "switchboard",
    "deployment",
];

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { gateway: None, metrics: None }) });
}}

struct Root {
    gateway: Option<Rc<Gateway>>,
    /// Stat names and ids for this configuration (the gateway role records the metrics).
    metrics: Option<Rc<EnvoyMetrics>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let Some(bytes) = self.get_plugin_configuration() else {
            log::error!("switchboard: no plugin configuration given");
            return false;
        };
        let text = String::from_utf8_lossy(&bytes);
        let vars = env::host_env();
        match Gateway::from_text(&text, &|name: &str| vars.get(name).cloned()) {
            Ok(gw) => {
                log::info!(
                    "switchboard: {:?} role configured: {} providers, {} models",
                    gw.role,
                    gw.providers.len(),
                    gw.models.len()
                );
                if gw.role == Role::Gateway {
                    // Create every limit counter before traffic (see `limits::store`).
                    for (entry, initial) in gw.limits.entries() {
                        crate::limits::store::ensure(&shared::SharedData, &entry, &initial);
                    }
                    // Gathered counters reach Envoy's stats every tick (see `metrics`).
                    self.set_tick_period(METRICS_FLUSH);
                }
                self.metrics = Some(Rc::new(EnvoyMetrics::new(Labels::new(&gw))));
                self.gateway = Some(Rc::new(gw));
                true
            }
            Err(problems) => {
                for p in problems {
                    log::error!("switchboard config: {p}");
                }
                false
            }
        }
    }

    fn on_tick(&mut self) {
        handoff::forget_just_parked();
        if let Some(metrics) = &self.metrics {
            metrics.flush();
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let gw = self.gateway.clone()?;
        Some(match gw.role {
            Role::Gateway => Box::new(gateway::GatewayFilter::new(gw, self.metrics.clone()?)),
            Role::Upstream => Box::new(upstream::UpstreamFilter::new(gw)),
        })
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Nanoseconds since the Unix epoch, from the host clock.
fn now_ns(ctx: &dyn Context) -> u64 {
    ctx.get_current_time()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
