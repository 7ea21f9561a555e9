//! The membership changes a scenario asks for, goal after goal, as an
//! operator would: the leader of the moment is asked (through the admin
//! API's whole-membership request, `MembershipOp::Reach`) to take the
//! ensemble to the current goal, and the driver takes the single steps.
//! Joiners are started empty when a goal first names them.

use std::collections::BTreeSet;

use consensus::random::SplitMix;

use crate::configs::Config;

fn add_voter(config: &Config, id: u64) -> Config {
    let mut next = config.clone();
    next.learners.remove(&id);
    next.voters.insert(id);
    next
}

fn remove(config: &Config, id: u64) -> Config {
    let mut next = config.clone();
    next.voters.remove(&id);
    next.learners.remove(&id);
    next
}

/// A goal of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Goal {
    Reach(Config),
    /// Add this server as a voter to whatever the configuration is then.
    AddVoter(u64),
    /// Remove whoever leads when this goal comes up.
    RemoveLeader,
}

/// The changes a scenario asks for, goal after goal, as an operator would;
/// the leader of the moment takes the steps.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: &'static str,
    pub initial: Config,
    goals: Vec<Goal>,
    at: usize,
    /// Per mille of events that ask the leader for its next step.
    pub pace: u64,
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
    pub fn servers(&self) -> BTreeSet<u64> {
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
    pub fn reached(&self) -> usize {
        self.at
    }

    pub fn goals(&self) -> usize {
        self.goals.len()
    }

    /// The goal to work toward when `leader` leads `current`, after moving
    /// past those already reached; `None` once the plan is done.
    pub fn goal(&mut self, current: &Config, leader: u64) -> Option<Config> {
        loop {
            let goal = match self.goals.get(self.at)? {
                Goal::Reach(c) => c.clone(),
                Goal::AddVoter(id) => {
                    let resolved = add_voter(current, *id);
                    self.goals[self.at] = Goal::Reach(resolved.clone());
                    resolved
                }
                Goal::RemoveLeader => {
                    let resolved = remove(current, leader);
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
    pub fn grow_and_shrink(seed: u64) -> Plan {
        let mut rng = SplitMix::new(seed ^ 0x6772_6f77);
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
                voters.remove(rng.below(voters.len() as u64) as usize);
                goals.push(Goal::Reach(Config::new(voters.clone(), [])));
            }
        }
        Plan::new("grow 3 to 5 and back", Config::new([1, 2, 3], []), goals)
    }

    /// A member is replaced, three times: a joiner is added as a learner,
    /// promoted, and a voter chosen by the seed is removed.
    pub fn replace_members(seed: u64) -> Plan {
        let mut rng = SplitMix::new(seed ^ 0x7265_706c);
        let mut voters: Vec<u64> = vec![1, 2, 3];
        let mut goals = Vec::new();
        for joiner in 4..=6 {
            voters.remove(rng.below(voters.len() as u64) as usize);
            voters.push(joiner);
            goals.push(Goal::Reach(Config::new(voters.clone(), [])));
        }
        Plan::new("replace a member", Config::new([1, 2, 3], []), goals)
    }

    /// Whoever leads is removed (after handing leadership over), three
    /// times, each after a joiner came in to keep three voters.
    pub fn remove_the_leader(_seed: u64) -> Plan {
        let mut goals = Vec::new();
        for joiner in 4..=6 {
            goals.push(Goal::AddVoter(joiner));
            goals.push(Goal::RemoveLeader);
        }
        Plan::new("remove the leader", Config::new([1, 2, 3], []), goals)
    }

    /// A voter chosen by the seed (the leader perhaps) becomes an observer
    /// and a voter again, three times, in a 5-voter ensemble.
    pub fn demote_and_promote(seed: u64) -> Plan {
        let mut rng = SplitMix::new(seed ^ 0x6465_6d6f);
        let all: Vec<u64> = vec![1, 2, 3, 4, 5];
        let mut goals = Vec::new();
        for _ in 0..3 {
            let id = all[rng.below(all.len() as u64) as usize];
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
    pub fn observers_come_and_go(_seed: u64) -> Plan {
        let voters = [1, 2, 3];
        let goals = [vec![4, 5], vec![5], vec![5, 6], vec![6], vec![6, 7]]
            .into_iter()
            .map(|learners| Goal::Reach(Config::new(voters, learners)))
            .collect();
        Plan::new("observers come and go", Config::new(voters, [4]), goals)
    }
}
