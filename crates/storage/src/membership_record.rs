//! How the membership record (`consensus::driver::MembershipRecord`) is
//! written in the store's metadata: one line of text, so `inspect` and a
//! person reading a dump see what it says. The forms earlier releases
//! wrote read back the same, so an upgraded server opens its old store:
//!
//! - `voters=1,2,3;learners=4;server=2` — a member (`server=` names whose
//!   store it is; absent in records of earlier releases);
//! - `voters=;learners=` — a joiner waiting to be added;
//! - `restoring;voters=...;learners=...;server=2` — a member taking its
//!   state back after it lost its store;
//! - `removed=<version, hex>` — a removed server;
//! - `recovering=<id>` — an interrupted `recover-alone`.

use consensus::driver::{MembershipRecord, StoredConf};

const REMOVED: &str = "removed=";
const RECOVERING: &str = "recovering=";
const RESTORING: &str = "restoring;";

/// The record's bytes.
pub fn encode(record: &MembershipRecord) -> Vec<u8> {
    let text = match record {
        MembershipRecord::Member(conf) => conf_text(conf),
        MembershipRecord::Joining => "voters=;learners=".to_owned(),
        MembershipRecord::Restoring(conf) => format!("{RESTORING}{}", conf_text(conf)),
        MembershipRecord::Removed { version } => format!("{REMOVED}{version:x}"),
        MembershipRecord::Recovering { survivor } => format!("{RECOVERING}{survivor}"),
        MembershipRecord::Unreadable(text) => text.clone(),
    };
    text.into_bytes()
}

/// Reads [`encode`]'s bytes (and earlier releases').
pub fn decode(bytes: &[u8]) -> MembershipRecord {
    let text = String::from_utf8_lossy(bytes);
    if let Some(version) = text.strip_prefix(REMOVED) {
        return match i64::from_str_radix(version, 16) {
            Ok(version) => MembershipRecord::Removed { version },
            Err(_) => MembershipRecord::Unreadable(text.into_owned()),
        };
    }
    if let Some(survivor) = text.strip_prefix(RECOVERING) {
        return MembershipRecord::Recovering {
            survivor: survivor.to_owned(),
        };
    }
    if let Some(conf) = text.strip_prefix(RESTORING) {
        return match parse_conf(conf) {
            Some(conf) => MembershipRecord::Restoring(conf),
            None => MembershipRecord::Unreadable(text.into_owned()),
        };
    }
    match parse_conf(&text) {
        Some(conf) if conf.is_empty() => MembershipRecord::Joining,
        Some(conf) => MembershipRecord::Member(conf),
        None => MembershipRecord::Unreadable(text.into_owned()),
    }
}

fn conf_text(conf: &StoredConf) -> String {
    let list = |ids: &[u64]| ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    let mut text = format!(
        "voters={};learners={}",
        list(&conf.voters),
        list(&conf.learners)
    );
    if let Some(server) = conf.server {
        text.push_str(&format!(";server={server}"));
    }
    text
}

fn parse_conf(text: &str) -> Option<StoredConf> {
    let mut conf = StoredConf::default();
    let mut seen_voters = false;
    for part in text.split(';') {
        let (key, value) = part.split_once('=')?;
        let ids = || -> Option<Vec<u64>> {
            value
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().ok())
                .collect()
        };
        match key {
            "voters" => {
                conf.voters = ids()?;
                seen_voters = true;
            }
            "learners" => conf.learners = ids()?,
            "server" => conf.server = Some(value.parse().ok()?),
            _ => return None,
        }
    }
    seen_voters.then_some(conf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let conf = StoredConf {
            voters: vec![1, 2, 3],
            learners: vec![4],
            server: Some(2),
        };
        for record in [
            MembershipRecord::Member(conf.clone()),
            MembershipRecord::Joining,
            MembershipRecord::Restoring(conf.clone()),
            MembershipRecord::Restoring(StoredConf {
                server: Some(3),
                ..StoredConf::default()
            }),
            MembershipRecord::Removed {
                version: 0x2_0000_000b,
            },
            MembershipRecord::Recovering {
                survivor: "3".into(),
            },
        ] {
            assert_eq!(decode(&encode(&record)), record);
        }
    }

    #[test]
    fn earlier_releases_records_read_back() {
        assert_eq!(
            decode(b"voters=1,2;learners="),
            MembershipRecord::Member(StoredConf {
                voters: vec![1, 2],
                learners: Vec::new(),
                server: None,
            })
        );
        assert_eq!(decode(b"voters=;learners="), MembershipRecord::Joining);
        assert_eq!(
            decode(b"removed=20000000b"),
            MembershipRecord::Removed {
                version: 0x2_0000_000b
            }
        );
        assert!(matches!(
            decode(b"voters=x"),
            MembershipRecord::Unreadable(_)
        ));
        assert!(matches!(decode(b""), MembershipRecord::Unreadable(_)));
    }
}
