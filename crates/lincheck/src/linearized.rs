//! The set of operations linearized so far, and its compact memo key.
//!
//! The search memoizes (linearized set, state) pairs (Lowe 2017, section 4;
//! Porcupine's `cache`). Porcupine keys the memo with a bitset of every
//! operation, which costs n/8 bytes per memoized pair: on a partition of
//! 20,000 operations, 2.5 KB each, gigabytes for a search that backtracks.
//! But the search only linearizes an operation whose call comes before the
//! first pending return, so the completed operations it has linearized are,
//! in invocation order, a prefix plus a few past it, within the window of
//! concurrency. Their key is that prefix's length and the ranks past it:
//! exact, and as small as the concurrency. The unknown-outcome operations
//! taken are kept apart, as a sorted list, because the memo compares them
//! by inclusion rather than equality (see `memo.rs`).

/// A completed operation's rank in invocation order.
type Rank = u32;

/// The memo key of the completed operations of a linearized set.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CompletedKey {
    prefix: Rank,
    beyond_prefix: Box<[Rank]>,
}

/// A set of operations (indices into a partition's operations).
#[derive(Debug)]
pub(crate) struct LinearizedSet {
    /// Each completed operation's rank; `None` for unknown-outcome ones.
    rank_of: Vec<Option<Rank>>,
    member: Vec<bool>,
    /// The smallest rank not in the set: every rank below it is.
    prefix: Rank,
    /// The ranks of the other completed members, sorted.
    beyond_prefix: Vec<Rank>,
    /// The unknown-outcome members, sorted.
    unknown: Vec<u32>,
}

impl LinearizedSet {
    /// An empty set over operations with these invocation times, of which
    /// those with `completed[op]` are completed.
    pub(crate) fn new(invoked_at: &[u64], completed: &[bool]) -> Self {
        let mut completed_ops: Vec<usize> =
            (0..invoked_at.len()).filter(|&op| completed[op]).collect();
        completed_ops.sort_by_key(|&op| (invoked_at[op], op));
        let mut rank_of = vec![None; invoked_at.len()];
        for (rank, &op) in completed_ops.iter().enumerate() {
            rank_of[op] = Some(to_u32(rank));
        }
        Self {
            rank_of,
            member: vec![false; invoked_at.len()],
            prefix: 0,
            beyond_prefix: Vec::new(),
            unknown: Vec::new(),
        }
    }

    /// Whether `op` is in the set.
    pub(crate) fn contains(&self, op: usize) -> bool {
        self.member[op]
    }

    /// Adds `op`, which must be absent; returns what [`Self::remove`] needs
    /// to undo it.
    pub(crate) fn insert(&mut self, op: usize) -> Rank {
        debug_assert!(!self.member[op], "operation {op} linearized twice");
        self.member[op] = true;
        let saved_prefix = self.prefix;
        match self.rank_of[op] {
            None => insert_sorted(&mut self.unknown, to_u32(op)),
            Some(rank) if rank == self.prefix => {
                self.prefix += 1;
                // The members just past the old prefix may now extend it.
                let absorbed = self
                    .beyond_prefix
                    .iter()
                    .zip(self.prefix..)
                    .take_while(|(member, expected)| **member == *expected)
                    .count();
                self.beyond_prefix.drain(..absorbed);
                self.prefix += to_u32(absorbed);
            }
            Some(rank) => insert_sorted(&mut self.beyond_prefix, rank),
        }
        saved_prefix
    }

    /// Removes `op`, the member inserted last, given what its insert
    /// returned.
    pub(crate) fn remove(&mut self, op: usize, saved_prefix: Rank) {
        debug_assert!(self.member[op], "operation {op} removed while absent");
        self.member[op] = false;
        match self.rank_of[op] {
            None => remove_sorted(&mut self.unknown, to_u32(op)),
            Some(rank) if rank == saved_prefix => {
                // The insert absorbed the members between the two prefixes.
                let absorbed = (saved_prefix + 1)..self.prefix;
                self.beyond_prefix.splice(0..0, absorbed);
                self.prefix = saved_prefix;
            }
            Some(rank) => remove_sorted(&mut self.beyond_prefix, rank),
        }
    }

    /// The key of the completed members as they are now.
    pub(crate) fn completed_key(&self) -> CompletedKey {
        CompletedKey {
            prefix: self.prefix,
            beyond_prefix: self.beyond_prefix.as_slice().into(),
        }
    }

    /// The unknown-outcome members, sorted.
    pub(crate) fn unknown_members(&self) -> &[u32] {
        &self.unknown
    }
}

fn insert_sorted(members: &mut Vec<u32>, value: u32) {
    let position = members.partition_point(|member| *member < value);
    members.insert(position, value);
}

fn remove_sorted(members: &mut Vec<u32>, value: u32) {
    if let Ok(position) = members.binary_search(&value) {
        members.remove(position);
    }
}

/// Operation counts fit in a `u32`: a history that large would not fit in
/// memory as operations anyway.
fn to_u32(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ops 0..=3 completed, invoked in order 0, 2, 1, 3; op 4 unknown.
    fn set() -> LinearizedSet {
        LinearizedSet::new(&[0, 5, 3, 9, 1], &[true, true, true, true, false])
    }

    fn key(prefix: Rank, beyond_prefix: &[Rank]) -> CompletedKey {
        CompletedKey {
            prefix,
            beyond_prefix: beyond_prefix.into(),
        }
    }

    #[test]
    fn the_key_is_the_prefix_and_the_ranks_past_it() {
        let mut set = set();
        set.insert(4);
        set.insert(1); // rank 2
        assert_eq!(set.completed_key(), key(0, &[2]));
        assert_eq!(set.unknown_members(), [4]);
        set.insert(0); // rank 0: prefix 1
        set.insert(2); // rank 1: prefix 2, then 3 with rank 2 absorbed
        assert_eq!(set.completed_key(), key(3, &[]));
        assert!(set.contains(2) && !set.contains(3));
    }

    #[test]
    fn equal_sets_have_equal_keys_whatever_the_order() {
        let mut first = set();
        let mut second = set();
        for op in [0, 1, 4] {
            first.insert(op);
        }
        for op in [4, 1, 0] {
            second.insert(op);
        }
        assert_eq!(first.completed_key(), second.completed_key());
        assert_eq!(first.unknown_members(), second.unknown_members());
    }

    #[test]
    fn remove_undoes_insert_in_reverse_order() {
        let mut set = set();
        let snapshot = |set: &LinearizedSet| (set.completed_key(), set.unknown_members().to_vec());
        let mut keys = vec![snapshot(&set)];
        let mut undo = Vec::new();
        for op in [1, 4, 0, 2, 3] {
            undo.push((op, set.insert(op)));
            keys.push(snapshot(&set));
        }
        assert_eq!(keys.last().map(|(key, _)| key.prefix), Some(4));
        while let Some((op, saved)) = undo.pop() {
            keys.pop();
            set.remove(op, saved);
            assert_eq!(Some(&snapshot(&set)), keys.last());
        }
    }
}
