//! The simulated servers' membership driver, as the server's: the leader
//! of the moment takes the plan's next single step (`membership.rs`),
//! joiners start empty, a leader that is to leave hands over first, a
//! server that applies a configuration without itself stops, and every
//! applied change is checked against its description.

use consensus::raft::eraftpb::ConfState;
use consensus::{ConsensusError, Role};

use crate::sim::cluster::{Cluster, applied_index, start};
use crate::sim::membership::{
    Action, Change, Config, all_steps, conf_change, next_action, successor,
};

impl Cluster {
    /// The leader of the moment (of the highest term, should a stale one
    /// still believe it leads) takes the plan's next step, if it may.
    pub(super) fn reconfigure(&mut self) -> Result<(), String> {
        let Some(i) = self.leader_now() else {
            return Ok(());
        };
        let id = self.nodes[i].id;
        let Some(node) = self.nodes[i].node.as_ref() else {
            return Ok(());
        };
        // One change at a time: the next only once the last is applied
        // (the node refuses too; the driver does not even ask).
        if node.membership_pending() {
            return Ok(());
        }
        let current = Config::of(&node.conf_state());
        if !current.is_voter(id) {
            // Demoted while leading: it hands over (`drive`), and changes
            // nothing more.
            return Ok(());
        }
        let progress = node.progress();
        let commit = node.commit_index();
        let Some(plan) = self.plan.as_mut() else {
            return Ok(());
        };
        let Some(goal) = plan.goal(&current, id) else {
            return Ok(());
        };
        match next_action(&current, &goal, id, &progress, commit) {
            Action::Propose(change) => self.propose_change(i, &current, &goal, change)?,
            Action::Transfer(to) => {
                let n = &mut self.nodes[i];
                let Some(node) = n.node.as_mut() else {
                    return Ok(());
                };
                let term = node.term();
                // Asked again at every step while it lasts (raft-rs ignores
                // a repeat, and gives up after an election timeout); told
                // and counted once per term and successor.
                node.transfer_leader(to);
                if n.handing_over != Some((term, to)) {
                    n.handing_over = Some((term, to));
                    self.membership.transfers += 1;
                    self.log(format!("{id} hands leadership to {to}: it leaves {goal}"));
                }
            }
            Action::Wait | Action::Reached => {}
        }
        self.drive(i)
    }

    /// The running server that leads in the highest term, if any.
    fn leader_now(&self) -> Option<usize> {
        (0..self.nodes.len())
            .filter_map(|i| {
                let node = self.nodes[i].node.as_ref()?;
                (node.role() == Role::Leader).then_some((node.term(), i))
            })
            .max()
            .map(|(_, i)| i)
    }

    /// Leader `i` proposes `change` of `current`, toward `goal`.
    fn propose_change(
        &mut self,
        i: usize,
        current: &Config,
        goal: &Config,
        change: Change,
    ) -> Result<(), String> {
        if let Change::AddLearner(id) = change {
            self.start_joiner(id)?;
        }
        let (changes, described) = if self.faults.jump_to_goal {
            (all_steps(current, goal), goal.clone())
        } else {
            (vec![change], change.apply(current))
        };
        let n = &mut self.nodes[i];
        let id = n.id;
        let Some(node) = n.node.as_mut() else {
            return Ok(());
        };
        match node.propose_membership(conf_change(&changes, &described)) {
            Ok(()) => {}
            // Leadership moved on, or the last change is not applied yet
            // here (a new leader holds back until it applied its log).
            Err(
                ConsensusError::NotLeader { .. }
                | ConsensusError::LeaderNotReady { .. }
                | ConsensusError::MembershipInProgress { .. },
            ) => return Ok(()),
            Err(e) => {
                return Err(format!(
                    "server {id}: membership change {changes:?} refused: {e}"
                ));
            }
        }
        self.membership.proposed += 1;
        self.log(format!("{id} proposes {changes:?} for {described}"));
        Ok(())
    }

    /// Starts joiner `id` (once): an empty disk, no configuration, no log;
    /// it waits for the leader, which can only bring it up to date by a
    /// snapshot.
    fn start_joiner(&mut self, id: u64) -> Result<(), String> {
        let Some(j) = self.nodes.iter().position(|n| n.id == id) else {
            return Err(format!("the plan adds server {id}, which has no slot"));
        };
        let n = &mut self.nodes[j];
        if n.retired {
            return Err(format!("the plan adds server {id} again after its removal"));
        }
        if n.started {
            return Ok(());
        }
        n.started = true;
        start(n);
        self.log(format!("{id} starts empty, to join"));
        self.drive(j)
    }

    /// Server `i` applies the committed change at `index`, which raft-rs
    /// says led to `conf`: the configuration must be the one the change
    /// describes and the one every other server reached there; it is
    /// stored (raft-rs reads it at a restart, with the applied entries as
    /// of the same sync); a server it leaves out stops.
    pub(super) fn apply_membership(
        &mut self,
        i: usize,
        index: u64,
        conf: &ConfState,
        context: &[u8],
    ) -> Result<(), String> {
        let n = &mut self.nodes[i];
        let id = n.id;
        self.configs.applied(id, index, conf, context)?;
        n.disk.live.core().conf_state = conf.clone();
        let reached = Config::of(conf);
        if !reached.contains(id) {
            n.retiring = true;
        }
        self.log(format!("{id} applies the change at {index}: {reached}"));
        Ok(())
    }

    /// Server `i` applied a configuration without itself: it stops taking
    /// part for good, as the server's process does. Its disk stays (what
    /// it synced); what it held back is never sent.
    pub(super) fn retire(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        n.retiring = false;
        n.retired = true;
        if n.node.take().is_some_and(|x| x.role() == Role::Leader) {
            self.membership.leaders_removed += 1;
        }
        n.held.clear();
        let id = n.id;
        self.membership.retired += 1;
        self.log(format!("{id} is removed and stops"));
    }

    /// raft-rs keeps a leader that a change demoted leading (it only stops
    /// campaigning): like any leader that leaves, it hands leadership to a
    /// caught-up voter, and proposes nothing meanwhile (the node refuses
    /// during a hand-over).
    pub(super) fn hand_over_if_not_a_voter(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        let applied = applied_index(n);
        let Some(node) = n.node.as_mut() else {
            return;
        };
        if node.role() != Role::Leader || self.configs.is_voter_at(applied, n.id) {
            // (Checked first against the configuration in force, the same
            // as raft-rs's but cheaper to look up, after every ready.)
            return;
        }
        let conf = Config::of(&node.conf_state());
        if conf.is_voter(n.id) {
            return;
        }
        let term = node.term();
        if let Some(to) = successor(&conf, &conf, n.id, &node.progress(), node.commit_index()) {
            node.transfer_leader(to);
            if n.handing_over != Some((term, to)) {
                n.handing_over = Some((term, to));
                let id = n.id;
                self.membership.leaders_demoted += 1;
                self.log(format!(
                    "{id} leads but was demoted: it hands leadership to {to}"
                ));
            }
        }
    }

    /// Membership changes committed in the run.
    pub(crate) fn membership_changes(&self) -> usize {
        self.configs.changes()
    }

    /// Servers removed from the configuration in the run.
    pub(crate) fn servers_removed(&self) -> usize {
        self.configs.left()
    }

    /// Goals of the plan reached, of all.
    pub(crate) fn plan_progress(&self) -> (usize, usize) {
        self.plan
            .as_ref()
            .map_or((0, 0), |p| (p.reached(), p.goals()))
    }
}
