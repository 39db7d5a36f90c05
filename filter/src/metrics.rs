//! Envoy stats behind `flow::metrics::MetricsSink`. Each series is defined in Envoy the first
//! time it is used (Envoy prefixes the name with `wasmcustom.`) and its id is kept. Histogram
//! values and gauges go to Envoy at once (one host call each); counter increments are gathered
//! per worker and handed over by `flush` (the root context's tick, every second), so a
//! request's half dozen counters cost no host call of their own. A gauge is one Envoy stat for
//! every worker: gathered per worker, a worker's older value could land after a newer one.

use crate::host::Host;
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;
use switchboard_core::flow::metrics::{Kind, Labels, MetricsSink, Series};

/// How often counters gathered in the VM are handed to Envoy's stats.
pub const FLUSH_PERIOD: Duration = Duration::from_secs(1);

/// The stat names of one configuration and the Envoy ids of the series defined so far.
pub struct Stats {
    labels: Labels,
    ids: RefCell<HashMap<Series, u32>>,
    /// Counter increments not yet handed to Envoy, by metric id.
    pending: RefCell<HashMap<u32, u64>>,
}

impl Stats {
    pub fn new(labels: Labels) -> Self {
        Stats {
            labels,
            ids: RefCell::new(HashMap::new()),
            pending: RefCell::new(HashMap::new()),
        }
    }

    /// Hands what was gathered since the last flush to Envoy.
    pub fn flush(&self, host: &impl Host) {
        let Ok(mut pending) = self.pending.try_borrow_mut() else {
            return;
        };
        for (id, n) in pending.drain() {
            host.increment_metric(id, n);
        }
    }

    /// A sink recording into Envoy through `host`.
    pub fn sink<'a, H: Host>(&'a self, host: &'a H) -> StatsSink<'a, H> {
        StatsSink { stats: self, host }
    }

    fn id(&self, host: &impl Host, series: Series) -> Option<u32> {
        if let Some(id) = self.ids.try_borrow().ok()?.get(&series) {
            return Some(*id);
        }
        let name = self.labels.stat_name(&series);
        let id = host.define_metric(series.metric.kind(), &name);
        match id {
            Some(id) => {
                self.ids.try_borrow_mut().ok()?.insert(series, id);
            }
            None => log::warn!("switchboard: cannot define metric {name}"),
        }
        id
    }
}

pub struct StatsSink<'a, H: Host> {
    stats: &'a Stats,
    host: &'a H,
}

impl<H: Host> MetricsSink for StatsSink<'_, H> {
    fn add(&mut self, series: Series, value: u64) {
        let kind = series.metric.kind();
        // Defined even when 0: a series exists from its first occasion.
        let Some(id) = self.stats.id(self.host, series) else {
            return;
        };
        match kind {
            Kind::Counter if value == 0 => {}
            Kind::Counter => {
                if let Ok(mut pending) = self.stats.pending.try_borrow_mut() {
                    let entry = pending.entry(id).or_insert(0);
                    *entry = entry.saturating_add(value);
                }
            }
            // A histogram records the value, a gauge is set to it.
            Kind::Histogram | Kind::Gauge => self.host.record_metric(id, value),
        }
    }
}
