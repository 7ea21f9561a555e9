//! The configurations the search has reached, with subsumption on
//! unknown-outcome operations.
//!
//! A configuration is the set of operations linearized and the model state
//! (Lowe 2017, section 4). Two configurations with the same completed
//! operations and the same state differ only in which unknown-outcome
//! operations they took, and the one that took fewer can do everything the
//! other can: every operation the other may still linearize, it may too,
//! and it may also take the extra ones later. So once a configuration was
//! reached, any that took a superset of its unknown-outcome operations is
//! skipped. Without this, k timed-out writes whose effect a later delete
//! erases give 2^k configurations that all look alike from then on.
//!
//! The sets kept for one (completed operations, state) are few when a
//! history is linearizable, but a search that must exhaust every
//! combination of timed-out writes can pile up thousands of sets none of
//! which includes another, and comparing against them all would cost more
//! than it saves. So at most [`SETS_PER_CONFIGURATION_MAX`] are kept, the
//! oldest dropped first: forgetting a configuration only means it may be
//! searched again, never that one is skipped wrongly.
//!
//! The limit on runs of unknown-outcome operations (`wgl.rs`) makes a
//! configuration reached at the limit less free than the same one below
//! it, so it only subsumes others at the limit. Where a difference in the
//! run's length still lets one configuration hide a linearization, the
//! search that hides it was cut off by the limit and is repeated with a
//! higher one.

use std::collections::HashMap;
use std::hash::Hash;

use crate::linearized::CompletedKey;

/// How many unknown-outcome sets are kept per (completed operations,
/// state).
const SETS_PER_CONFIGURATION_MAX: usize = 16;

/// The unknown-outcome operations a configuration took.
#[derive(Debug)]
struct UnknownTaken {
    /// Sorted.
    ops: Box<[u32]>,
    at_run_limit: bool,
}

impl UnknownTaken {
    /// Whether a configuration that took `self` can do all that one that
    /// took `other` (with the same completed operations and state) can.
    fn subsumes(&self, other: &UnknownTaken) -> bool {
        (!self.at_run_limit || other.at_run_limit) && is_sorted_subset(&self.ops, &other.ops)
    }
}

/// The configurations reached.
#[derive(Debug)]
pub(crate) struct Memo<S> {
    /// For each (completed operations, state), the unknown-outcome sets
    /// reached with them, none subsuming another.
    reached: HashMap<(CompletedKey, S), Vec<UnknownTaken>>,
}

impl<S: Hash + Eq> Memo<S> {
    pub(crate) fn new() -> Self {
        Self {
            reached: HashMap::new(),
        }
    }

    /// Records a configuration unless one that subsumes it was reached;
    /// returns its state if it is new, `None` if it is not.
    pub(crate) fn insert(
        &mut self,
        completed: CompletedKey,
        state: S,
        unknown: &[u32],
        at_run_limit: bool,
    ) -> Option<S>
    where
        S: Clone,
    {
        let taken = UnknownTaken {
            ops: unknown.into(),
            at_run_limit,
        };
        let key = (completed, state);
        match self.reached.get_mut(&key) {
            Some(reached) => {
                if reached.iter().any(|earlier| earlier.subsumes(&taken)) {
                    return None;
                }
                reached.retain(|earlier| !taken.subsumes(earlier));
                if reached.len() >= SETS_PER_CONFIGURATION_MAX {
                    reached.remove(0);
                }
                reached.push(taken);
                Some(key.1)
            }
            None => {
                let state = key.1.clone();
                self.reached.insert(key, vec![taken]);
                Some(state)
            }
        }
    }
}

/// Whether every element of sorted `small` is in sorted `large`.
fn is_sorted_subset(small: &[u32], large: &[u32]) -> bool {
    if small.len() > large.len() {
        return false;
    }
    let mut large = large.iter();
    small
        .iter()
        .all(|wanted| large.by_ref().any(|candidate| candidate == wanted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linearized::LinearizedSet;

    #[test]
    fn sorted_subsets() {
        assert!(is_sorted_subset(&[], &[1]));
        assert!(is_sorted_subset(&[1, 3], &[0, 1, 2, 3]));
        assert!(!is_sorted_subset(&[1, 4], &[0, 1, 2, 3]));
        assert!(!is_sorted_subset(&[2, 1], &[1, 2]));
    }

    #[test]
    fn fewer_unknown_operations_subsume_more() {
        let set = LinearizedSet::new(&[0, 1, 2], &[true, false, false]);
        let key = || set.completed_key();
        let mut memo = Memo::new();
        assert_eq!(memo.insert(key(), "s", &[1], false), Some("s"));
        assert_eq!(
            memo.insert(key(), "s", &[1, 2], false),
            None,
            "a superset is subsumed"
        );
        assert_eq!(
            memo.insert(key(), "t", &[1, 2], false),
            Some("t"),
            "another state is not"
        );
        assert_eq!(
            memo.insert(key(), "s", &[2], false),
            Some("s"),
            "nor a set beside it"
        );
        assert_eq!(
            memo.insert(key(), "s", &[], true),
            Some("s"),
            "at the limit, it is less free"
        );
        assert_eq!(memo.insert(key(), "s", &[], false), Some("s"));
        assert_eq!(
            memo.insert(key(), "s", &[2], true),
            None,
            "the empty set subsumes all now"
        );
    }
}
