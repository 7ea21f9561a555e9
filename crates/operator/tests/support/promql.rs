//! The metric names the chart's alert rules and dashboard query
//! (`charts/conclave/files/`), for the tests that check them against real
//! `/metrics` output: the operator's (its registry after real reconciles,
//! `crates/operator/src/controller/tests/`) and the servers' (an ensemble's
//! leader, `crates/server/tests/integration/monitoring.rs`), so that a
//! renamed metric breaks a test, not an alert nobody sees fire.

use std::collections::BTreeSet;

/// Names of metrics the operator exports (every other name is a server's).
pub(crate) const OPERATOR_PREFIX: &str = "conclave_operator_";

/// Every alert's `expr` and every dashboard target's `expr`.
pub(crate) fn chart_queries() -> Vec<String> {
    let files = concat!(env!("CARGO_MANIFEST_DIR"), "/../../charts/conclave/files");
    let alerts = std::fs::read_to_string(format!("{files}/alerts.yaml")).expect("alerts.yaml");
    let mut queries: Vec<String> = alerts
        .lines()
        .filter_map(|line| line.trim().strip_prefix("expr:"))
        .map(|expr| expr.trim().to_owned())
        .collect();
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{files}/dashboard.json")).expect("dashboard.json"),
    )
    .expect("dashboard.json is JSON");
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                queries.push(expr.to_owned());
            }
        }
    }
    assert!(queries.len() >= 10, "the chart's queries were not found");
    queries
}

/// Words of PromQL that are not metrics: operators, and aggregations
/// (which may come before their `by (...)` rather than their argument).
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];
/// Words followed by a list of label names.
const GROUPING: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The metric names in one PromQL expression: identifiers that are not
/// functions, aggregations, keywords, label names or label values.
pub(crate) fn metric_names(expr: &str) -> BTreeSet<String> {
    // Quoted strings, label matchers and range selectors hold no metric.
    let mut text = String::new();
    let (mut quote, mut brace, mut bracket) = (None, 0, 0);
    for c in expr.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'' | '`') => quote = Some(c),
            (None, '{') => brace += 1,
            (None, '}') => brace -= 1,
            (None, '[') => bracket += 1,
            (None, ']') => bracket -= 1,
            (None, c) if brace == 0 && bracket == 0 => text.push(c),
            (None, _) => {}
        }
        if matches!(c, '}' | ']') {
            text.push(' ');
        }
    }
    let chars: Vec<char> = text.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if !(c.is_ascii_alphabetic() || c == '_' || c == ':') {
            // A number's digits and exponent are skipped whole.
            if c.is_ascii_digit() {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            } else {
                i += 1;
            }
            continue;
        }
        let start = i;
        while i < chars.len()
            && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
        {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        let mut next = i;
        while next < chars.len() && chars[next].is_whitespace() {
            next += 1;
        }
        let called = chars.get(next) == Some(&'(');
        if GROUPING.contains(&word.as_str()) && called {
            // Skip the label list.
            while i < chars.len() && chars[i] != ')' {
                i += 1;
            }
            continue;
        }
        if called || KEYWORDS.contains(&word.as_str()) {
            continue;
        }
        names.insert(word);
    }
    names
}

/// The names a Prometheus text exposition offers: every sample's name,
/// and for each family its name with the suffixes its type gives samples.
pub(crate) fn exposed(exposition: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in exposition.lines() {
        if let Some(family) = line.strip_prefix("# TYPE ") {
            let family = family.split_whitespace().next().unwrap_or_default();
            names.insert(family.to_owned());
            for suffix in ["_total", "_bucket", "_sum", "_count"] {
                names.insert(format!("{family}{suffix}"));
            }
        } else if !line.starts_with('#') {
            let name = line.split(['{', ' ']).next().unwrap_or_default();
            if !name.is_empty() {
                names.insert(name.to_owned());
            }
        }
    }
    names
}

#[test]
fn names_are_told_from_functions_labels_and_keywords() {
    let names = metric_names(
        r#"sum by (le, pod) (rate(x_bucket{cluster="a/b", quantile="0.99"}[5m])) / on (pod) y_count and z == 0 > 1e3"#,
    );
    assert_eq!(
        names,
        BTreeSet::from(["x_bucket".into(), "y_count".into(), "z".into()])
    );
    let exposition = "# TYPE a counter\na_total{x=\"1\"} 2\n# TYPE b gauge\nb 1\nc_sum 3\n";
    let seen = exposed(exposition);
    assert!(seen.contains("a_total") && seen.contains("b") && seen.contains("c_sum"));
    assert!(!seen.contains("x"));
}
