//! The chart's alert rules and dashboard (`charts/conclave/files/`) ask
//! for server metrics by the names a real three-server ensemble's
//! `/metrics` exports (leader and followers together: some, such as
//! `synced_followers`, only the leader reports). The operator's names are
//! checked against its registry in `crates/operator`.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::ensemble_support::LocalEnsemble;

#[path = "../../../operator/tests/support/promql.rs"]
mod promql;

#[test]
fn the_charts_queries_name_metrics_the_servers_export() {
    let ensemble = LocalEnsemble::start(3, &[]);
    let leader = ensemble.await_leader(Duration::from_secs(30));
    // One write, so that the write path's summaries have samples.
    let mut client = ensemble.client(leader);
    let created = client.create("/monitored", b"x").expect("a write");
    assert_eq!(created.err, 0, "the write is acknowledged");
    let mut seen = BTreeSet::new();
    for i in 0..3 {
        let (status, body) = ensemble.admin(i, "GET", "/metrics", None, None);
        assert_eq!(status, 200, "member {i}: {body}");
        seen.extend(promql::exposed(&body));
    }
    assert!(
        seen.contains("synced_followers"),
        "the leader's own metrics"
    );
    let wanted: BTreeSet<String> = promql::chart_queries()
        .iter()
        .flat_map(|q| promql::metric_names(q))
        .filter(|name| !name.starts_with(promql::OPERATOR_PREFIX))
        .collect();
    assert!(wanted.len() >= 10, "{wanted:?}");
    let missing: Vec<&String> = wanted.iter().filter(|name| !seen.contains(*name)).collect();
    assert!(
        missing.is_empty(),
        "the chart asks for server metrics no server exports: {missing:?}"
    );
}
