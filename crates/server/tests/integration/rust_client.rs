//! Differential test with a Rust client (`zookeeper-client`): one scenario
//! against Apache ZooKeeper 3.8 and against Conclave, observations compared
//! line by line. Both servers are fresh, so zxids are compared as they are;
//! times are compared as relations, session ids as "own session or not".

use std::time::Duration;

use zookeeper_client::{
    Acls, AddWatchMode, Client, CreateMode, EventType, MultiWriteError, MultiWriteResult, Stat,
};

use crate::support::{Kind, TestServer, pair};

fn stat_line(stat: &Stat, own_session: i64) -> String {
    let owner = match stat.ephemeral_owner {
        0 => "none".to_owned(),
        o if o == own_session => "own".to_owned(),
        o => format!("other:{o:x}"),
    };
    format!(
        "czxid={} mzxid={} pzxid={} ctime==mtime:{} version={} cversion={} aversion={} owner={} len={} children={}",
        stat.czxid,
        stat.mzxid,
        stat.pzxid,
        stat.ctime == stat.mtime,
        stat.version,
        stat.cversion,
        stat.aversion,
        owner,
        stat.data_length,
        stat.num_children
    )
}

async fn with_timeout<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// The scenario: each step appends what it observed.
async fn scenario(server: &TestServer) -> Vec<String> {
    let mut obs = Vec::new();
    let client = Client::connect(&server.connect_string())
        .await
        .expect("connect");
    let other = Client::connect(&server.connect_string())
        .await
        .expect("connect other");
    let me = client.session_id().0;
    let open = CreateMode::Persistent.with_acls(Acls::anyone_all());
    let eph = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
    let eph_seq = CreateMode::EphemeralSequential.with_acls(Acls::anyone_all());
    let seq = CreateMode::PersistentSequential.with_acls(Acls::anyone_all());

    let (stat, _) = client.create("/rc", b"hello", &open).await.unwrap();
    obs.push(format!("create /rc: {}", stat_line(&stat, me)));
    for name in ["a", "b"] {
        let (stat, _) = client
            .create(&format!("/rc/{name}"), b"", &open)
            .await
            .unwrap();
        obs.push(format!("create /rc/{name}: {}", stat_line(&stat, me)));
    }
    let (stat, sequence) = client.create("/rc/s-", b"x", &seq).await.unwrap();
    obs.push(format!("sequential: {sequence} {}", stat_line(&stat, me)));
    let (stat, sequence) = client.create("/rc/e-", b"", &eph_seq).await.unwrap();
    obs.push(format!(
        "ephemeral sequential: {sequence} {}",
        stat_line(&stat, me)
    ));
    let r = client.create("/rc/e-0000000003/child", b"", &open).await;
    obs.push(format!("child of ephemeral: {r:?}"));
    let r = client.create("/rc", b"", &open).await;
    obs.push(format!("create existing: {r:?}"));
    let r = client.create("/missing/x", b"", &open).await;
    obs.push(format!("create under missing: {r:?}"));
    client.create("/rc/eph", b"", &eph).await.unwrap();

    let (mut children, stat) = client.get_children("/rc").await.unwrap();
    children.sort();
    obs.push(format!("children: {children:?} {}", stat_line(&stat, me)));
    obs.push(format!(
        "descendants of /rc: {:?}",
        client.count_descendants_number("/rc").await
    ));
    obs.push(format!(
        "descendants of /: {:?}",
        client.count_descendants_number("/").await
    ));
    let mut ephemerals = client.list_ephemerals("/").await.unwrap();
    ephemerals.sort();
    obs.push(format!("own ephemerals: {ephemerals:?}"));
    obs.push(format!(
        "other's ephemerals: {:?}",
        other.list_ephemerals("/").await
    ));

    let stat = client.set_data("/rc", b"v2", Some(0)).await.unwrap();
    obs.push(format!("set v0: {}", stat_line(&stat, me)));
    obs.push(format!(
        "set stale version: {:?}",
        client.set_data("/rc", b"v3", Some(0)).await
    ));
    obs.push(format!(
        "delete non-empty: {:?}",
        client.delete("/rc", None).await
    ));
    obs.push(format!(
        "delete bad version: {:?}",
        client.delete("/rc/a", Some(5)).await
    ));
    obs.push(format!(
        "delete: {:?}",
        client.delete("/rc/a", Some(0)).await
    ));
    let (_, stat) = client.get_data("/rc").await.unwrap();
    obs.push(format!("after delete: {}", stat_line(&stat, me)));
    obs.push(format!(
        "missing data: {:?}",
        client.get_data("/nope").await
    ));
    obs.push(format!(
        "missing stat: {:?}",
        client.check_stat("/nope").await.map(|s| s.is_some())
    ));

    let (acl, stat) = client.get_acl("/zookeeper/config").await.unwrap();
    obs.push(format!("config acl: {acl:?} aversion={}", stat.aversion));
    let (root_children, root) = client.get_children("/").await.unwrap();
    obs.push(format!(
        "root: {:?} {}",
        root_children,
        stat_line(&root, me)
    ));

    // One-shot data watch fired by another session's write; then the
    // watcher's own write.
    let (_, _, watcher) = client.get_and_watch_data("/rc").await.unwrap();
    other.set_data("/rc", b"from other", None).await.unwrap();
    let event = with_timeout("data watch", watcher.changed()).await;
    obs.push(format!("data watch: {:?} {}", event.event_type, event.path));
    let (_, watcher) = client.check_and_watch_stat("/later").await.unwrap();
    other.create("/later", b"", &open).await.unwrap();
    let event = with_timeout("exists watch", watcher.changed()).await;
    obs.push(format!(
        "exists watch: {:?} {}",
        event.event_type, event.path
    ));
    let (_, _, watcher) = client.get_and_watch_children("/rc").await.unwrap();
    other.delete("/rc/b", None).await.unwrap();
    let event = with_timeout("child watch", watcher.changed()).await;
    obs.push(format!(
        "child watch: {:?} {}",
        event.event_type, event.path
    ));

    let mut recursive = client
        .watch("/rc", AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    other.create("/rc/deep", b"", &open).await.unwrap();
    other.create("/rc/deep/er", b"", &open).await.unwrap();
    other.set_data("/rc/deep/er", b"x", None).await.unwrap();
    other.delete("/rc/deep/er", None).await.unwrap();
    for _ in 0..4 {
        let event = with_timeout("recursive watch", recursive.changed()).await;
        assert_ne!(event.event_type, EventType::NodeChildrenChanged);
        obs.push(format!("recursive: {:?} {}", event.event_type, event.path));
    }

    let mut writer = client.new_multi_writer();
    writer.add_create("/rc/m1", b"", &open).unwrap();
    writer.add_set_data("/rc", b"multi", None).unwrap();
    writer.add_check_version("/rc/deep", 0).unwrap();
    writer.add_delete("/rc/deep", None).unwrap();
    let results = writer.commit().await.unwrap();
    for r in &results {
        obs.push(match r {
            MultiWriteResult::Create { path, stat } => {
                format!("multi create {path} {}", stat_line(stat, me))
            }
            MultiWriteResult::SetData { stat } => format!("multi set {}", stat_line(stat, me)),
            other => format!("multi {other:?}"),
        });
    }
    let mut writer = client.new_multi_writer();
    writer.add_create("/rc/m2", b"", &open).unwrap();
    writer.add_delete("/rc/nope", None).unwrap();
    writer.add_create("/rc/m3", b"", &open).unwrap();
    match writer.commit().await {
        Err(MultiWriteError::OperationFailed { index, source }) => {
            obs.push(format!("failed multi: op {index}: {source:?}"))
        }
        other => obs.push(format!("failed multi: unexpected {other:?}")),
    }
    obs.push(format!(
        "m2 after failed multi: {:?}",
        client.check_stat("/rc/m2").await.map(|s| s.is_some())
    ));

    let mut reader = client.new_multi_reader();
    reader.add_get_data("/rc").unwrap();
    reader.add_get_data("/nope").unwrap();
    reader.add_get_children("/rc/m1").unwrap();
    obs.push(format!(
        "multi read: {:?}",
        reader.commit().await.map(|r| r.len())
    ));

    client.sync("/rc").await.unwrap();
    obs.push(format!(
        "whoami: {:?}",
        client.list_auth_users().await.map(|u| u.len())
    ));
    client.auth("digest", b"user:secret").await.unwrap();
    let creator = CreateMode::Persistent.with_acls(Acls::creator_all());
    client.create("/rc/private", b"p", &creator).await.unwrap();
    let (acl, _) = client.get_acl("/rc/private").await.unwrap();
    obs.push(format!("creator acl: {acl:?}"));
    obs.push(format!(
        "other reads private: {:?}",
        other.get_data("/rc/private").await
    ));
    obs.push(format!(
        "other reads private acl: {:?}",
        other.get_acl("/rc/private").await.map(|(a, _)| a)
    ));

    drop(client);
    let _ = with_timeout("other still works", other.get_data("/rc"))
        .await
        .unwrap();
    obs
}

#[test]
fn rust_client_sees_the_same_as_against_apache_zookeeper() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (zookeeper, conclave) = pair(&[]);
    assert_eq!(zookeeper.kind, Kind::ZooKeeper);
    let expected = runtime.block_on(scenario(&zookeeper));
    let actual = runtime.block_on(scenario(&conclave));
    for (i, (e, a)) in expected.iter().zip(&actual).enumerate() {
        assert_eq!(
            a,
            e,
            "step {i} differs (left: Conclave, right: ZooKeeper)\nConclave log:\n{}",
            conclave.log()
        );
    }
    assert_eq!(actual.len(), expected.len());
}
