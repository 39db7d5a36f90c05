//! Envoy stats behind `flow::metrics::MetricsSink`. Each series is defined in Envoy the first
//! time it is used (Envoy prefixes the name with `wasmcustom.`) and its id is kept. Histogram
//! values and gauges go to Envoy at once (one host call each); counter increments are gathered
//! per worker and handed over by `flush` (the root context's tick, every second), so a
//! request's half dozen counters cost no host call of their own. A gauge is one Envoy stat for
//! every worker: gathered per worker, a worker's older value could land after a newer one.

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;
use std::cell::RefCell;
use std::collections::HashMap;
use switchboard_core::flow::metrics::{Kind, Labels, MetricsSink, Series};

/// The stat names of one configuration and the Envoy ids of the series defined so far.
pub struct EnvoyMetrics {
    labels: Labels,
    ids: RefCell<HashMap<Series, u32>>,
    /// Counter increments not yet handed to Envoy, by metric id.
    pending: RefCell<HashMap<u32, u64>>,
}

impl EnvoyMetrics {
    pub fn new(labels: Labels) -> Self {
        EnvoyMetrics {
            labels,
            ids: RefCell::new(HashMap::new()),
            pending: RefCell::new(HashMap::new()),
        }
    }

    /// Hands what was gathered since the last flush to Envoy.
    pub fn flush(&self) {
        let Ok(mut pending) = self.pending.try_borrow_mut() else {
            return;
        };
        for (id, n) in pending.drain() {
            let n = i64::try_from(n).unwrap_or(i64::MAX);
            if let Err(e) = hostcalls::increment_metric(id, n) {
                log::debug!("switchboard: metric {id}: {e:?}");
            }
        }
    }

    fn id(&self, series: Series) -> Option<u32> {
        if let Some(id) = self.ids.try_borrow().ok()?.get(&series) {
            return Some(*id);
        }
        let kind = match series.metric.kind() {
            Kind::Counter => MetricType::Counter,
            Kind::Histogram => MetricType::Histogram,
            Kind::Gauge => MetricType::Gauge,
        };
        let name = self.labels.stat_name(&series);
        match hostcalls::define_metric(kind, &name) {
            Ok(id) => {
                self.ids.try_borrow_mut().ok()?.insert(series, id);
                Some(id)
            }
            Err(e) => {
                log::warn!("switchboard: cannot define metric {name}: {e:?}");
                None
            }
        }
    }
}

impl MetricsSink for &EnvoyMetrics {
    fn add(&mut self, series: Series, value: u64) {
        let kind = series.metric.kind();
        // Defined even when 0: a series exists from its first occasion.
        let Some(id) = self.id(series) else {
            return;
        };
        match kind {
            Kind::Counter if value == 0 => {}
            Kind::Counter => {
                if let Ok(mut pending) = self.pending.try_borrow_mut() {
                    let entry = pending.entry(id).or_insert(0);
                    *entry = entry.saturating_add(value);
                }
            }
            // A histogram records the value, a gauge is set to it.
            Kind::Histogram | Kind::Gauge => {
                if let Err(e) = hostcalls::record_metric(id, value) {
                    log::debug!("switchboard: metric {id}: {e:?}");
                }
            }
        }
    }
}
