//! Envoy stats behind `flow::metrics::MetricsSink`. Each series is defined in Envoy the first
//! time it is used (Envoy prefixes the name with `wasmcustom.`) and its id is kept, so the hot
//! path is one map lookup and one host call per value.

use crate::flow::metrics::{Kind, Labels, MetricsSink, Series};
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;
use std::cell::RefCell;
use std::collections::HashMap;

/// The stat names of one configuration and the Envoy ids of the series defined so far.
pub struct EnvoyMetrics {
    labels: Labels,
    ids: RefCell<HashMap<Series, u32>>,
}

impl EnvoyMetrics {
    pub fn new(labels: Labels) -> Self {
        EnvoyMetrics {
            labels,
            ids: RefCell::new(HashMap::new()),
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
        let Some(id) = self.id(series) else {
            return;
        };
        let result = match series.metric.kind() {
            Kind::Counter if value == 0 => Ok(()),
            Kind::Counter => {
                hostcalls::increment_metric(id, i64::try_from(value).unwrap_or(i64::MAX))
            }
            // A gauge is set to the value (the same Envoy stat for every worker).
            Kind::Histogram | Kind::Gauge => hostcalls::record_metric(id, value),
        };
        if let Err(e) = result {
            log::debug!("switchboard: metric {id}: {e:?}");
        }
    }
}
