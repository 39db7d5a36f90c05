//! The only code that talks to Envoy. It moves bytes between the host and `flow`, and owns
//! nothing but per-request state.
#![cfg(target_arch = "wasm32")]

mod env;
mod gateway;
mod metrics;
mod shared;
mod upstream;

use metrics::EnvoyMetrics;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};
use switchboard_core::config::Role;
use switchboard_core::flow::metrics::Labels;
use switchboard_core::runtime::Runtime;

/// How often counters gathered in the VM are handed to Envoy's stats.
const METRICS_FLUSH: Duration = Duration::from_secs(1);

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { gateway: None, metrics: None }) });
}}

struct Root {
    gateway: Option<Rc<Runtime>>,
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
        match Runtime::from_text(&text, &|name: &str| vars.get(name).cloned()) {
            Ok(rt) => {
                log::info!(
                    "switchboard: {:?} role configured: {} providers, {} models",
                    rt.role,
                    rt.providers.len(),
                    rt.models.len()
                );
                if rt.role == Role::Gateway {
                    // Create every limit counter before traffic (see `limits::store`).
                    for (entry, initial) in rt.limits.entries() {
                        switchboard_core::limits::store::ensure(
                            &shared::SharedData,
                            &entry,
                            &initial,
                        );
                    }
                    // Gathered counters reach Envoy's stats every tick (see `metrics`).
                    self.set_tick_period(METRICS_FLUSH);
                }
                self.metrics = Some(Rc::new(EnvoyMetrics::new(Labels::new(&rt))));
                self.gateway = Some(Rc::new(rt));
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
        switchboard_core::flow::handoff::forget_just_parked();
        if let Some(metrics) = &self.metrics {
            metrics.flush();
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let rt = self.gateway.clone()?;
        Some(match rt.role {
            Role::Gateway => Box::new(gateway::GatewayFilter::new(rt, self.metrics.clone()?)),
            Role::Upstream => Box::new(upstream::UpstreamFilter::new(rt)),
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
