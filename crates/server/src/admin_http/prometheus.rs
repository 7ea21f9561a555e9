//! The `/metrics` text: Prometheus exposition format 0.0.4 of the `mntr`
//! metric table, with each metric's HELP text saying whether Conclave has
//! a real value for it.

use std::fmt::Write as _;

use crate::processor::ServerSnapshot;
use crate::report::{self, MetricValue};

/// Prometheus text exposition (format 0.0.4) of the `mntr` metrics: one
/// family per metric with HELP and TYPE lines. Gauges and counters keep
/// their `mntr` names; summaries are Prometheus summaries (`_sum`,
/// `_count`, and quantiles for the percentile ones); version and state are
/// labels of `server_info`.
pub fn prometheus_text(s: &ServerSnapshot) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP server_info Server version and state (zk_version, zk_server_state); always 1"
    );
    let _ = writeln!(out, "# TYPE server_info gauge");
    let _ = writeln!(
        out,
        "server_info{{version=\"{}\",server_state=\"{}\"}} 1",
        label_value(report::VERSION),
        s.server_state()
    );
    for m in report::metrics(s) {
        let help = if m.real || m.help == report::PLACEHOLDER_HELP {
            m.help.to_owned()
        } else {
            format!("{} (placeholder: a neutral value)", m.help)
        };
        let _ = writeln!(
            out,
            "# HELP {} {}",
            m.name,
            help.replace('\\', "\\\\").replace('\n', "\\n")
        );
        match &m.value {
            MetricValue::Gauge(v) => {
                let _ = writeln!(out, "# TYPE {} gauge\n{} {}", m.name, m.name, v.mntr());
            }
            MetricValue::Counter(v) => {
                let _ = writeln!(out, "# TYPE {} counter\n{} {v}", m.name, m.name);
            }
            MetricValue::Summary(sum) => {
                let _ = writeln!(out, "# TYPE {} summary", m.name);
                let _ = writeln!(
                    out,
                    "{}_sum {}\n{}_count {}",
                    m.name, sum.total, m.name, sum.count
                );
            }
            MetricValue::Percentiles(sum, p) => {
                let _ = writeln!(out, "# TYPE {} summary", m.name);
                for (q, v) in ["0.5", "0.95", "0.99", "0.999"].iter().zip(p) {
                    let _ = writeln!(out, "{}{{quantile=\"{q}\"}} {v}", m.name);
                }
                let _ = writeln!(
                    out,
                    "{}_sum {}\n{}_count {}",
                    m.name, sum.total, m.name, sum.count
                );
            }
            MetricValue::SummarySet(set) => {
                let _ = writeln!(out, "# TYPE {} summary", m.name);
                for (key, sum) in set {
                    let label = format!("{{namespace=\"{}\"}}", label_value(key));
                    let _ = writeln!(out, "{}_sum{label} {}", m.name, sum.total);
                    let _ = writeln!(out, "{}_count{label} {}", m.name, sum.count);
                }
            }
        }
    }
    // The ensemble's numeric `mntr` keys (quorum size, learners, synced
    // followers on the leader, ...), as gauges.
    for (name, value) in report::ensemble(s) {
        if matches!(value, report::Value::Text(_)) {
            continue;
        }
        let _ = writeln!(
            out,
            "# HELP {name} Ensemble: mntr's zk_{name}\n# TYPE {name} gauge\n{name} {}",
            value.mntr()
        );
    }
    out
}

fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;
    use crate::admin_http::tests::{get, shared};
    use crate::four_letter::tests::fabricated_snapshot;

    /// Checks the text exposition format line by line: every sample belongs
    /// to a family announced by HELP and TYPE, names are valid, values parse.
    fn check_exposition(text: &str) -> Vec<String> {
        let valid_name = |n: &str| {
            let mut chars = n.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        };
        let mut families = Vec::new();
        let mut current: Option<(String, String)> = None;
        let mut helped = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap();
                assert!(valid_name(name) && !help.is_empty(), "{line}");
                helped = Some(name.to_owned());
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert_eq!(helped.as_deref(), Some(name), "HELP before TYPE: {line}");
                assert!(["gauge", "counter", "summary"].contains(&kind), "{line}");
                assert!(
                    !families.contains(&name.to_owned()),
                    "duplicate family {name}"
                );
                families.push(name.to_owned());
                current = Some((name.to_owned(), kind.to_owned()));
            } else {
                let (series, value) = line.rsplit_once(' ').unwrap();
                let name = series.split('{').next().unwrap();
                assert!(valid_name(name), "{line}");
                value
                    .parse::<f64>()
                    .unwrap_or_else(|_| panic!("value of {line}"));
                let (family, kind) = current.as_ref().expect("sample before TYPE");
                let ok = match kind.as_str() {
                    "summary" => {
                        name == family
                            || name == format!("{family}_sum")
                            || name == format!("{family}_count")
                    }
                    _ => name == family,
                };
                assert!(ok, "{line} outside its family {family}");
                if let Some(labels) = series.strip_prefix(name)
                    && !labels.is_empty()
                {
                    assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
                }
            }
        }
        families
    }

    #[tokio::test]
    async fn metrics_are_valid_prometheus_text() {
        let shared = shared();
        let (status, ctype, body) = get(&shared, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(ctype.unwrap().starts_with("text/plain; version=0.0.4"));
        let families = check_exposition(&body);
        assert_eq!(families.len(), 1 + 24 + 47 + 41 + 23 + 2);
        assert!(
            body.contains("\n# TYPE znode_count gauge\nznode_count "),
            "{body}"
        );
        assert!(body.contains("\n# TYPE commit_count counter\n"));
        assert!(body.contains("\n# TYPE readlatency summary\nreadlatency{quantile=\"0.5\"} 0\n"));
        assert!(body.contains("server_info{version=\"3.8.0-conclave-"));
        assert!(body.contains("# HELP jvm_pause_time_ms ZooKeeper metric with no counterpart"));
    }

    #[test]
    fn prometheus_text_of_a_busy_snapshot_is_valid() {
        let text = prometheus_text(&fabricated_snapshot());
        check_exposition(&text);
        assert!(text.contains("readlatency_count 2\n"));
        assert!(
            text.contains("\nread_per_namespace_sum{namespace=\"app\"} 82\n"),
            "{text}"
        );
        assert!(text.contains("\navg_latency 7.3333\n"));
    }
}
