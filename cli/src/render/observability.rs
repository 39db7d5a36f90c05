//! What `switchboard render` adds so the filter's metrics and per-request record come out of
//! Envoy usable: `stats_tags` that turn the label segments of our stat names into Prometheus
//! labels, histogram buckets in the units we record, and an HCM access log writing one JSON
//! line per request (the spend ledger) from Envoy's fields and the filter state we set.

use serde_json::{json, Value};
use switchboard_core::config::Options;
use switchboard_core::flow::metrics::{tag_regex, Metric, LABELS};
use switchboard_core::names::{LEDGER_PROPERTY, STATS_PREFIX};

/// Milliseconds: whole requests (streams included) run from milliseconds to minutes.
const DURATION_MS: &[u64] = &[
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 20_000, 30_000, 60_000, 120_000,
    300_000, 600_000,
];
/// Milliseconds to the first chunk of a stream.
const FIRST_CHUNK_MS: &[u64] = &[
    5, 10, 25, 50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 10_000, 30_000,
];
/// Microseconds inside the filter per request.
const OVERHEAD_US: &[u64] = &[
    10, 25, 50, 75, 100, 150, 200, 300, 400, 500, 750, 1000, 2500, 5000, 10_000, 50_000,
];

/// Envoy's stat name of a metric (Wasm stats carry the `wasmcustom.` namespace).
fn stat_prefix(metric: Metric) -> String {
    format!("wasmcustom.{STATS_PREFIX}.{}", metric.name())
}

pub fn stats_config() -> Value {
    let tags: Vec<Value> = LABELS
        .iter()
        .map(|(key, tag)| json!({"tag_name": tag, "regex": tag_regex(key)}))
        .collect();
    let buckets = |metric: Metric, bounds: &[u64]| json!({"match": {"prefix": stat_prefix(metric)}, "buckets": bounds});
    json!({
        "stats_tags": tags,
        "histogram_bucket_settings": [
            buckets(Metric::Duration, DURATION_MS),
            buckets(Metric::TimeToFirstChunk, FIRST_CHUNK_MS),
            buckets(Metric::Overhead, OVERHEAD_US),
        ],
    })
}

/// Envoy's fields of a ledger line; the filter's own follow them (`ledger_fragment`). All
/// of these render as JSON-safe text (numbers, a timestamp, flag letters, an HTTP method
/// token, and a request id: routes to the filter's fast path only match ids without quotes,
/// backslashes or control characters, and the filter replaces such characters on the other).
const ENVOY_FIELDS: &[(&str, &str)] = &[
    ("start_time", "\"%START_TIME%\""),
    ("request_id", "\"%REQ(X-REQUEST-ID)%\""),
    ("method", "\"%REQ(:METHOD)%\""),
    ("status", "%RESPONSE_CODE%"),
    ("response_flags", "\"%RESPONSE_FLAGS%\""),
    ("duration_ms", "%DURATION%"),
    ("bytes_received", "%BYTES_RECEIVED%"),
    ("bytes_sent", "%BYTES_SENT%"),
];

/// One JSON object per line: Envoy's fields, then the filter's ledger fragment (JSON members
/// after a comma, escaped by the filter). A text format rather than `json_format`: it embeds
/// the fragment as is and costs Envoy far less per request. With `omit_empty_values`, a
/// request the filter never saw (rejected by the HTTP codec) still gets a valid line.
pub fn ledger_format() -> String {
    let envoy: Vec<String> = ENVOY_FIELDS
        .iter()
        .map(|(name, command)| format!("\"{name}\":{command}"))
        .collect();
    format!(
        "{{{}%FILTER_STATE(wasm.{LEDGER_PROPERTY}:PLAIN)%}}\n",
        envoy.join(",")
    )
}

/// The HCM `access_log` list for `options.access_log` (`stdout`, `off`, or a file path).
pub fn access_log(options: &Options) -> Vec<Value> {
    if !options.writes_ledger() {
        return vec![];
    }
    let log_format = json!({
        "text_format_source": {"inline_string": ledger_format()},
        "omit_empty_values": true,
    });
    match options.access_log.as_str() {
        "stdout" => vec![json!({
            "name": "envoy.access_loggers.stdout",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
                "log_format": log_format,
            }
        })],
        path => vec![json!({
            "name": "envoy.access_loggers.file",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                "path": path,
                "log_format": log_format,
            }
        })],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_gets_a_tag_and_histograms_get_buckets() {
        let config = stats_config();
        let tags = config["stats_tags"].as_array().unwrap();
        assert_eq!(tags.len(), LABELS.len());
        assert_eq!(tags[2]["tag_name"], "gen_ai.request.model");
        assert_eq!(
            tags[2]["regex"],
            r"^wasmcustom\.switchboard\..*?(\.gen_ai_request_model=([^.]*))"
        );
        let prefixes: Vec<&str> = config["histogram_bucket_settings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["match"]["prefix"].as_str().unwrap())
            .collect();
        assert_eq!(
            prefixes,
            [
                "wasmcustom.switchboard.gen_ai.client.operation.duration",
                "wasmcustom.switchboard.gen_ai.client.operation.time_to_first_chunk",
                "wasmcustom.switchboard.gateway.overhead",
            ]
        );
    }

    #[test]
    fn access_log_goes_where_the_options_say() {
        let mut options = Options::default();
        let stdout = access_log(&options);
        assert_eq!(stdout[0]["name"], "envoy.access_loggers.stdout");
        let format = &stdout[0]["typed_config"]["log_format"];
        assert_eq!(format["omit_empty_values"], true);
        assert_eq!(
            format["text_format_source"]["inline_string"],
            "{\"start_time\":\"%START_TIME%\",\"request_id\":\"%REQ(X-REQUEST-ID)%\",\"method\":\"%REQ(:METHOD)%\",\"status\":%RESPONSE_CODE%,\"response_flags\":\"%RESPONSE_FLAGS%\",\"duration_ms\":%DURATION%,\"bytes_received\":%BYTES_RECEIVED%,\"bytes_sent\":%BYTES_SENT%%FILTER_STATE(wasm.switchboard:PLAIN)%}\n"
        );
        options.access_log = "/var/log/switchboard.jsonl".into();
        let file = access_log(&options);
        assert_eq!(
            file[0]["typed_config"]["path"],
            "/var/log/switchboard.jsonl"
        );
        options.access_log = "off".into();
        assert!(access_log(&options).is_empty());
    }
}
