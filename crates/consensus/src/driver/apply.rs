//! Committed entries to the state machine, in log order: the same path on
//! every server, leader or not. A transaction goes to the state machine as
//! it is (its zxid is checked there against the entry's position); a new
//! leader's first entry moves the zxid on (and, the first time, confirms
//! the static membership); a membership change is checked and adopted
//! (`adopt.rs`). Then the state machine writes its effects to the store in
//! one batch, and the log is compacted behind the applied index.

use super::io::{ApplyKind, Applying, LogWriter, StateMachine, Transport};
use super::{Driver, DriverError};
use crate::membership::{ChangeContext, Membership};
use crate::node::{Committed, CommittedKind};

impl<W, T: Transport, L: LogWriter> Driver<W, T, L> {
    pub(super) fn apply_committed(
        &mut self,
        committed: Vec<Committed>,
        sm: &mut dyn StateMachine<W>,
    ) -> Result<(), DriverError> {
        let Some(last) = committed.last().map(|c| (c.index, c.zxid)) else {
            return Ok(());
        };
        for c in committed {
            let entry = |kind| Applying {
                index: c.index,
                term: c.term,
                zxid: c.zxid,
                kind,
            };
            match c.kind {
                CommittedKind::Data(bytes) => {
                    sm.apply(entry(ApplyKind::Txn(&bytes))).map_err(|reason| {
                        DriverError::Apply {
                            index: c.index,
                            reason,
                        }
                    })?;
                }
                CommittedKind::LeaderStart => {
                    sm.apply(entry(ApplyKind::LeaderStart)).map_err(|reason| {
                        DriverError::Apply {
                            index: c.index,
                            reason,
                        }
                    })?;
                    self.confirm_static_membership(c.index, c.term, c.zxid, sm)?;
                }
                CommittedKind::Membership { conf, context } => {
                    let ctx = ChangeContext::decode(&context).map_err(|reason| {
                        DriverError::MembershipEntry {
                            index: c.index,
                            reason,
                        }
                    })?;
                    let membership = Membership::new(c.zxid, ctx.members.clone());
                    self.check_change(c.index, &membership, &conf)?;
                    let answers = ctx
                        .answers
                        .map(|(session_id, cxid)| super::Requester { session_id, cxid });
                    sm.apply(entry(ApplyKind::Membership {
                        membership: &membership,
                        answers,
                        time_ms: ctx.time_ms,
                    }))
                    .map_err(|reason| DriverError::Apply {
                        index: c.index,
                        reason,
                    })?;
                    self.membership_committed(c.index, membership, conf, sm);
                }
            }
        }
        let (index, zxid) = last;
        sm.applied(index, zxid);
        self.applied_index = index;
        self.applied_zxid = zxid;
        self.node.applied(index);
        self.compact_log(index);
        self.restore_progress(sm);
        self.advance_reconfig(sm);
        Ok(())
    }

    /// The first entry of the first leader confirms the static membership:
    /// its zxid becomes the version (as ZooKeeper's first NEWLEADER does).
    fn confirm_static_membership(
        &mut self,
        index: u64,
        term: u64,
        zxid: i64,
        sm: &mut dyn StateMachine<W>,
    ) -> Result<(), DriverError> {
        let static_members = match &self.applied_membership {
            Some(m) if m.version == 0 => m.members.clone(),
            _ => return Ok(()),
        };
        let membership = Membership::new(zxid, static_members);
        sm.apply(Applying {
            index,
            term,
            zxid,
            kind: ApplyKind::Membership {
                membership: &membership,
                answers: None,
                time_ms: 0,
            },
        })
        .map_err(|reason| DriverError::Apply { index, reason })?;
        self.applied_membership = Some(membership.clone());
        self.adopt_membership(membership, None, sm);
        Ok(())
    }
}
