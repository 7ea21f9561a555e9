//! Membership changes as the server makes them, for the simulator to drive:
//! configurations and the description of one that a change carries in its
//! context, single-step changes, the plans a scenario follows and the one
//! next step a leader takes toward a plan's goal.
//!
//! The server's rules, mirrored here:
//!
//! - every change is a single-step `ConfChangeV2` (one change, transition
//!   `Auto`), so raft-rs never enters a joint configuration, and its
//!   context describes the whole configuration that results;
//! - a joiner is added as a learner first and promoted only once the leader
//!   sees it caught up (`matched` at least the leader's commit index);
//! - additions come before removals (an ensemble is never smaller than
//!   needed on the way);
//! - a leader never removes or demotes itself: it hands leadership to a
//!   caught-up voter that stays, and that one makes the change;
//! - one change at a time: the next step only once the last is applied.

use std::collections::BTreeSet;

use consensus::PeerProgress;
use consensus::raft::eraftpb::{
    ConfChangeSingle, ConfChangeTransition, ConfChangeType, ConfChangeV2, ConfState,
};

use crate::sim::rng::Rng;

/// A configuration: who votes and who only learns (observers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Config {
    pub(crate) voters: BTreeSet<u64>,
    pub(crate) learners: BTreeSet<u64>,
    /// The outgoing voters of a joint configuration. Ours never are joint
    /// (every change is one step), so a non-empty set here never equals
    /// any description a change carries: the context check catches it.
    pub(crate) outgoing: BTreeSet<u64>,
}

impl Config {
    pub(crate) fn new(
        voters: impl IntoIterator<Item = u64>,
        learners: impl IntoIterator<Item = u64>,
    ) -> Config {
        Config {
            voters: voters.into_iter().collect(),
            learners: learners.into_iter().collect(),
            outgoing: BTreeSet::new(),
        }
    }

    /// raft-rs's configuration as ours (`learners_next` only exists in a
    /// joint configuration, whose outgoing voters already tell it apart).
    pub(crate) fn of(conf: &ConfState) -> Config {
        Config {
            voters: conf.voters.iter().copied().collect(),
            learners: conf.learners.iter().copied().collect(),
            outgoing: conf.voters_outgoing.iter().copied().collect(),
        }
    }

    pub(crate) fn to_conf_state(&self) -> ConfState {
        ConfState::from((
            self.voters.iter().copied().collect::<Vec<u64>>(),
            self.learners.iter().copied().collect::<Vec<u64>>(),
        ))
    }

    pub(crate) fn is_voter(&self, id: u64) -> bool {
        self.voters.contains(&id) || self.outgoing.contains(&id)
    }

    pub(crate) fn contains(&self, id: u64) -> bool {
        self.is_voter(id) || self.learners.contains(&id)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.voters.is_empty() && self.learners.is_empty() && self.outgoing.is_empty()
    }

    /// Whether `holders` include a majority of the voters (of both halves,
    /// were the configuration joint). Learners never count.
    pub(crate) fn is_quorum(&self, holders: &BTreeSet<u64>) -> bool {
        let majority = |voters: &BTreeSet<u64>| {
            voters.is_empty() || voters.intersection(holders).count() * 2 > voters.len()
        };
        !self.voters.is_empty() && majority(&self.voters) && majority(&self.outgoing)
    }

    /// The description a change carries in its context:
    /// `voters=1,2,3;learners=4`.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let list =
            |ids: &BTreeSet<u64>| ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        format!(
            "voters={};learners={}",
            list(&self.voters),
            list(&self.learners)
        )
        .into_bytes()
    }

    /// Reads [`Config::encode`]'s bytes; anything else is an error (a change
    /// without our description, such as raft-rs's own empty one that
    /// leaves a joint configuration).
    pub(crate) fn decode(bytes: &[u8]) -> Result<Config, String> {
        let text =
            std::str::from_utf8(bytes).map_err(|_| format!("context {bytes:?} is not text"))?;
        let ids = |part: Option<&str>, key: &str| -> Result<BTreeSet<u64>, String> {
            let list = part
                .and_then(|p| p.strip_prefix(key))
                .ok_or_else(|| format!("context {text:?} has no {key}"))?;
            list.split(',')
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse()
                        .map_err(|_| format!("context {text:?}: {s:?} is no id"))
                })
                .collect()
        };
        let mut parts = text.split(';');
        let voters = ids(parts.next(), "voters=")?;
        let learners = ids(parts.next(), "learners=")?;
        if parts.next().is_some() {
            return Err(format!(
                "context {text:?} has more than voters and learners"
            ));
        }
        Ok(Config {
            voters,
            learners,
            outgoing: BTreeSet::new(),
        })
    }
}

impl std::fmt::Display for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "voters {:?} learners {:?}", self.voters, self.learners)?;
        if !self.outgoing.is_empty() {
            write!(f, " outgoing {:?}", self.outgoing)?;
        }
        Ok(())
    }
}

/// One single-step change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// Adds a learner, or demotes a voter to one.
    AddLearner(u64),
    /// Adds a voter, or promotes a learner.
    AddVoter(u64),
    Remove(u64),
}

impl Change {
    /// The configuration this change makes of `config` (raft-rs's rules for
    /// a simple change).
    pub(crate) fn apply(self, config: &Config) -> Config {
        let mut next = config.clone();
        match self {
            Change::AddLearner(id) => {
                next.voters.remove(&id);
                next.learners.insert(id);
            }
            Change::AddVoter(id) => {
                next.learners.remove(&id);
                next.voters.insert(id);
            }
            Change::Remove(id) => {
                next.voters.remove(&id);
                next.learners.remove(&id);
            }
        }
        next
    }

    fn single(self) -> ConfChangeSingle {
        let (change_type, node_id) = match self {
            Change::AddLearner(id) => (ConfChangeType::AddLearnerNode, id),
            Change::AddVoter(id) => (ConfChangeType::AddNode, id),
            Change::Remove(id) => (ConfChangeType::RemoveNode, id),
        };
        ConfChangeSingle {
            change_type,
            node_id,
            ..ConfChangeSingle::default()
        }
    }
}

/// The entry a leader proposes: `changes` (one, unless a test breaks the
/// rule on purpose), transition `Auto`, and `described` in the context.
pub(crate) fn conf_change(changes: &[Change], described: &Config) -> ConfChangeV2 {
    let mut cc = ConfChangeV2::default();
    cc.set_transition(ConfChangeTransition::Auto);
    cc.set_changes(
        changes
            .iter()
            .map(|c| c.single())
            .collect::<Vec<_>>()
            .into(),
    );
    cc.set_context(described.encode().into());
    cc
}

/// Every step from `current` to `goal` at once: what only the broken
/// leader of `Faults::jump_to_goal` proposes, in one change.
pub(crate) fn all_steps(current: &Config, goal: &Config) -> Vec<Change> {
    let mut out = Vec::new();
    for &id in &goal.voters {
        if !current.voters.contains(&id) {
            out.push(Change::AddVoter(id));
        }
    }
    for &id in &goal.learners {
        if !current.learners.contains(&id) {
            out.push(Change::AddLearner(id));
        }
    }
    for &id in current.voters.iter().chain(&current.learners) {
        if !goal.contains(id) {
            out.push(Change::Remove(id));
        }
    }
    out
}

/// What the leader does next toward a goal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Propose(Change),
    /// Hand leadership over first: the next step removes or demotes the
    /// leader itself.
    Transfer(u64),
    /// Nothing can be done yet (a learner still catching up, no voter to
    /// hand over to).
    Wait,
    Reached,
}

/// The one next step from `current` toward `goal`, as leader `leader`
/// whose commit index is `commit` and whose view of the members is
/// `progress`.
pub(crate) fn next_action(
    current: &Config,
    goal: &Config,
    leader: u64,
    progress: &[PeerProgress],
    commit: u64,
) -> Action {
    if current == goal {
        return Action::Reached;
    }
    let caught_up = |id: u64| {
        progress
            .iter()
            .any(|p| p.id == id && p.matched >= commit && p.recent_active)
    };
    // Newcomers, voters to be or observers, join as learners.
    if let Some(&id) = goal
        .voters
        .iter()
        .chain(&goal.learners)
        .find(|&&id| !current.contains(id))
    {
        return Action::Propose(Change::AddLearner(id));
    }
    // Learners become voters once they hold everything committed.
    let promote: Vec<u64> = goal
        .voters
        .iter()
        .copied()
        .filter(|id| current.learners.contains(id))
        .collect();
    if let Some(&id) = promote.iter().find(|&&id| caught_up(id)) {
        return Action::Propose(Change::AddVoter(id));
    }
    if !promote.is_empty() {
        return Action::Wait;
    }
    // Then demotions and removals; the leader's own last, after handing
    // leadership to a voter that stays.
    let leaving = current
        .voters
        .iter()
        .chain(&current.learners)
        .copied()
        .filter(|&id| id != leader)
        .find(|&id| {
            !goal.contains(id) || (current.voters.contains(&id) && !goal.voters.contains(&id))
        });
    if let Some(id) = leaving {
        return Action::Propose(if goal.learners.contains(&id) {
            Change::AddLearner(id)
        } else {
            Change::Remove(id)
        });
    }
    // Only the leader itself is left to change.
    match successor(current, goal, leader, progress, commit) {
        Some(to) => Action::Transfer(to),
        None => Action::Wait,
    }
}

/// The voter to hand leadership to: one that stays a voter and has
/// everything committed, the furthest along first.
pub(crate) fn successor(
    current: &Config,
    goal: &Config,
    leader: u64,
    progress: &[PeerProgress],
    commit: u64,
) -> Option<u64> {
    progress
        .iter()
        .filter(|p| {
            p.id != leader
                && current.voters.contains(&p.id)
                && goal.voters.contains(&p.id)
                && p.matched >= commit
                && p.recent_active
        })
        .max_by_key(|p| (p.matched, std::cmp::Reverse(p.id)))
        .map(|p| p.id)
}

/// A goal of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Goal {
    Reach(Config),
    /// Add this server as a voter to whatever the configuration is then.
    AddVoter(u64),
    /// Remove whoever leads when this goal comes up.
    RemoveLeader,
}

/// The changes a scenario asks for, goal after goal, as an operator would;
/// the leader of the moment takes the steps.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) name: &'static str,
    pub(crate) initial: Config,
    goals: Vec<Goal>,
    at: usize,
    /// Per mille of events that ask the leader for its next step.
    pub(crate) pace: u64,
}

impl Plan {
    fn new(name: &'static str, initial: Config, goals: Vec<Goal>) -> Plan {
        Plan {
            name,
            initial,
            goals,
            at: 0,
            pace: 80,
        }
    }

    /// Every server that is ever a member: the cluster's slots.
    pub(crate) fn servers(&self) -> BTreeSet<u64> {
        let mut ids: BTreeSet<u64> = self
            .initial
            .voters
            .union(&self.initial.learners)
            .copied()
            .collect();
        for goal in &self.goals {
            match goal {
                Goal::Reach(c) => ids.extend(c.voters.iter().chain(&c.learners)),
                Goal::AddVoter(id) => {
                    ids.insert(*id);
                }
                Goal::RemoveLeader => {}
            }
        }
        ids
    }

    /// Goals reached so far.
    pub(crate) fn reached(&self) -> usize {
        self.at
    }

    pub(crate) fn goals(&self) -> usize {
        self.goals.len()
    }

    /// The goal to work toward when `leader` leads `current`, after moving
    /// past those already reached; `None` once the plan is done.
    pub(crate) fn goal(&mut self, current: &Config, leader: u64) -> Option<Config> {
        loop {
            let goal = match self.goals.get(self.at)? {
                Goal::Reach(c) => c.clone(),
                Goal::AddVoter(id) => {
                    let resolved = Change::AddVoter(*id).apply(current);
                    self.goals[self.at] = Goal::Reach(resolved.clone());
                    resolved
                }
                Goal::RemoveLeader => {
                    let resolved = Change::Remove(leader).apply(current);
                    self.goals[self.at] = Goal::Reach(resolved.clone());
                    resolved
                }
            };
            if &goal != current {
                return Some(goal);
            }
            self.at += 1;
        }
    }

    /// 3 voters grow to 5 (two joiners) and shrink back to 3 (two voters
    /// removed, chosen by the seed, the leader perhaps among them), twice.
    pub(crate) fn grow_and_shrink(seed: u64) -> Plan {
        let mut rng = Rng::new(seed ^ 0x6772_6f77);
        let mut voters: Vec<u64> = vec![1, 2, 3];
        let mut next_id = 4;
        let mut goals = Vec::new();
        for _ in 0..2 {
            for _ in 0..2 {
                voters.push(next_id);
                next_id += 1;
                goals.push(Goal::Reach(Config::new(voters.clone(), [])));
            }
            for _ in 0..2 {
                voters.remove(rng.below(voters.len()));
                goals.push(Goal::Reach(Config::new(voters.clone(), [])));
            }
        }
        Plan::new("grow 3 to 5 and back", Config::new([1, 2, 3], []), goals)
    }

    /// A member is replaced, three times: a joiner is added as a learner,
    /// promoted, and a voter chosen by the seed is removed.
    pub(crate) fn replace_members(seed: u64) -> Plan {
        let mut rng = Rng::new(seed ^ 0x7265_706c);
        let mut voters: Vec<u64> = vec![1, 2, 3];
        let mut goals = Vec::new();
        for joiner in 4..=6 {
            voters.remove(rng.below(voters.len()));
            voters.push(joiner);
            goals.push(Goal::Reach(Config::new(voters.clone(), [])));
        }
        Plan::new("replace a member", Config::new([1, 2, 3], []), goals)
    }

    /// Whoever leads is removed (after handing leadership over), three
    /// times, each after a joiner came in to keep three voters.
    pub(crate) fn remove_the_leader(_seed: u64) -> Plan {
        let mut goals = Vec::new();
        for joiner in 4..=6 {
            goals.push(Goal::AddVoter(joiner));
            goals.push(Goal::RemoveLeader);
        }
        Plan::new("remove the leader", Config::new([1, 2, 3], []), goals)
    }

    /// A voter chosen by the seed (the leader perhaps) becomes an observer
    /// and a voter again, three times, in a 5-voter ensemble.
    pub(crate) fn demote_and_promote(seed: u64) -> Plan {
        let mut rng = Rng::new(seed ^ 0x6465_6d6f);
        let all: Vec<u64> = vec![1, 2, 3, 4, 5];
        let mut goals = Vec::new();
        for _ in 0..3 {
            let id = all[rng.below(all.len())];
            let voters = all.iter().copied().filter(|&v| v != id);
            goals.push(Goal::Reach(Config::new(voters, [id])));
            goals.push(Goal::Reach(Config::new(all.clone(), [])));
        }
        Plan::new(
            "demote a voter and promote it back",
            Config::new(all, []),
            goals,
        )
    }

    /// Observers come and go beside 3 voters: 4 is there from the start,
    /// 5 joins, 4 leaves, 6 joins, 5 leaves, 7 joins.
    pub(crate) fn observers_come_and_go(_seed: u64) -> Plan {
        let voters = [1, 2, 3];
        let goals = [vec![4, 5], vec![5], vec![5, 6], vec![6], vec![6, 7]]
            .into_iter()
            .map(|learners| Goal::Reach(Config::new(voters, learners)))
            .collect();
        Plan::new("observers come and go", Config::new(voters, [4]), goals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(id: u64, matched: u64) -> PeerProgress {
        PeerProgress {
            id,
            matched,
            recent_active: true,
            learner: false,
        }
    }

    #[test]
    fn a_description_reads_back() {
        let config = Config::new([1, 2, 3], [4]);
        assert_eq!(config.encode(), b"voters=1,2,3;learners=4");
        assert_eq!(Config::decode(&config.encode()), Ok(config));
        assert_eq!(Config::decode(b"voters=;learners="), Ok(Config::default()));
        assert!(Config::decode(b"").is_err(), "raft-rs's empty change");
        assert!(Config::decode(b"voters=1;learners=x").is_err());
    }

    #[test]
    fn quorums_count_voters_only() {
        let config = Config::new([1, 2, 3], [4, 5]);
        assert!(config.is_quorum(&[1, 2].into()));
        assert!(!config.is_quorum(&[1, 4, 5].into()));
        assert!(!Config::default().is_quorum(&[1].into()));
    }

    /// The steps of replacing 1 by 4, led by 1: add 4 as a learner,
    /// promote it once caught up, then hand over (1 leaves last).
    #[test]
    fn a_replacement_adds_promotes_and_hands_over_before_leaving() {
        let goal = Config::new([2, 3, 4], []);
        let start = Config::new([1, 2, 3], []);
        let all = [progress(1, 9), progress(2, 9), progress(3, 7)];
        assert_eq!(
            next_action(&start, &goal, 1, &all, 9),
            Action::Propose(Change::AddLearner(4))
        );
        let learning = Change::AddLearner(4).apply(&start);
        let behind = [all[0], all[1], all[2], progress(4, 8)];
        assert_eq!(next_action(&learning, &goal, 1, &behind, 9), Action::Wait);
        let caught_up = [all[0], all[1], all[2], progress(4, 9)];
        assert_eq!(
            next_action(&learning, &goal, 1, &caught_up, 9),
            Action::Propose(Change::AddVoter(4))
        );
        let promoted = Change::AddVoter(4).apply(&learning);
        // Only voters that stay and hold everything committed take over,
        // the lowest id among the furthest along.
        let now = [
            progress(1, 12),
            progress(2, 11),
            progress(3, 10),
            progress(4, 11),
        ];
        assert_eq!(
            next_action(&promoted, &goal, 1, &now, 12),
            Action::Wait,
            "nobody has everything committed but the leader"
        );
        let now = [
            progress(1, 12),
            progress(2, 12),
            progress(3, 12),
            progress(4, 12),
        ];
        assert_eq!(
            next_action(&promoted, &goal, 1, &now, 12),
            Action::Transfer(2)
        );
        // Led by 2, the step removes 1.
        assert_eq!(
            next_action(&promoted, &goal, 2, &now, 12),
            Action::Propose(Change::Remove(1))
        );
        assert_eq!(next_action(&goal, &goal, 2, &now, 12), Action::Reached);
    }

    #[test]
    fn a_demotion_is_an_add_learner_and_the_plan_moves_on_when_reached() {
        let all = Config::new([1, 2, 3], []);
        let demoted = Config::new([1, 2], [3]);
        let now = [progress(1, 5), progress(2, 5), progress(3, 5)];
        assert_eq!(
            next_action(&all, &demoted, 1, &now, 5),
            Action::Propose(Change::AddLearner(3))
        );
        let mut plan = Plan::new(
            "t",
            all.clone(),
            vec![Goal::Reach(demoted.clone()), Goal::RemoveLeader],
        );
        assert_eq!(plan.goal(&all, 1), Some(demoted.clone()));
        assert_eq!(plan.goal(&demoted, 2), Some(Config::new([1], [3])));
        assert_eq!(plan.reached(), 1);
        assert_eq!(plan.goal(&Config::new([1], [3]), 1), None);
    }
}
