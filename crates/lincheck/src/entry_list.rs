//! The calls and returns of completed operations, in time order, as a
//! doubly linked list that entries can leave and rejoin in O(1).
//!
//! Wing & Gong's search (1993) walks this list from the front: a call
//! before the first return belongs to an operation that may be linearized
//! next; the first return is the deadline by which its operation must have
//! been. Linearizing an operation lifts its call and return out of the list;
//! backtracking puts them back. Lifts are undone in reverse order, so the
//! removed entries' own links are still right when they rejoin (Knuth's
//! "dancing links"; Lowe 2017, section 3; Porcupine's `lift`/`unlift`).
//!
//! Calls sort before returns at equal times: operations that touch the same
//! instant count as concurrent, which can only hide a violation, never
//! invent one. Unknown-outcome operations have no return and are kept out of
//! this list (see `wgl.rs`).

/// Whether an entry is an operation's call or its return.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum EntryKind {
    Call,
    Return,
}

/// One call or return.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    /// The operation (an index into the partition's operations).
    pub(crate) op: usize,
    pub(crate) kind: EntryKind,
    pub(crate) time: u64,
}

/// The list. Slot 0 is the head sentinel and the last slot the tail
/// sentinel, a return at `u64::MAX`, so walking never needs a bounds case.
#[derive(Debug)]
pub(crate) struct EntryList {
    entries: Vec<Entry>,
    next: Vec<usize>,
    prev: Vec<usize>,
    /// The call and return slots of each operation that has them.
    slots_of_op: Vec<Option<(usize, usize)>>,
}

pub(crate) const HEAD: usize = 0;

impl EntryList {
    /// The list of `(op, invoked_at, completed_at)` for completed operations;
    /// `op_count` bounds the operation indices.
    pub(crate) fn new(
        op_count: usize,
        completed: impl IntoIterator<Item = (usize, u64, u64)>,
    ) -> Self {
        let mut sorted: Vec<Entry> = Vec::new();
        for (op, invoked_at, completed_at) in completed {
            sorted.push(Entry {
                op,
                kind: EntryKind::Call,
                time: invoked_at,
            });
            sorted.push(Entry {
                op,
                kind: EntryKind::Return,
                time: completed_at,
            });
        }
        sorted.sort_by_key(|entry| (entry.time, entry.kind, entry.op));

        let sentinel = |kind, time| Entry {
            op: usize::MAX,
            kind,
            time,
        };
        let mut entries = Vec::with_capacity(sorted.len() + 2);
        entries.push(sentinel(EntryKind::Call, 0));
        entries.extend(sorted);
        entries.push(sentinel(EntryKind::Return, u64::MAX));

        let slot_count = entries.len();
        let next = (1..=slot_count).collect();
        let prev = (0..slot_count)
            .map(|slot: usize| slot.saturating_sub(1))
            .collect();
        let mut slots_of_op = vec![None; op_count];
        for (slot, entry) in entries.iter().enumerate().skip(1).take(slot_count - 2) {
            if let Some(slots) = slots_of_op.get_mut(entry.op) {
                match (entry.kind, *slots) {
                    (EntryKind::Call, _) => *slots = Some((slot, slot)),
                    (EntryKind::Return, Some((call, _))) => *slots = Some((call, slot)),
                    // A return sorts after its call (completion >= invocation).
                    (EntryKind::Return, None) => {}
                }
            }
        }
        Self {
            entries,
            next,
            prev,
            slots_of_op,
        }
    }

    /// The entry in `slot`.
    pub(crate) fn entry(&self, slot: usize) -> Entry {
        self.entries[slot]
    }

    /// The slot after `slot` (the tail sentinel's successor is itself past
    /// the end; callers stop at the first return, and the tail is one).
    pub(crate) fn next(&self, slot: usize) -> usize {
        self.next[slot]
    }

    /// Takes an operation's call and return out of the list.
    pub(crate) fn lift(&mut self, op: usize) {
        if let Some(Some((call, ret))) = self.slots_of_op.get(op).copied() {
            self.unlink(call);
            self.unlink(ret);
        }
    }

    /// Puts back the operation lifted last.
    pub(crate) fn unlift(&mut self, op: usize) {
        if let Some(Some((call, ret))) = self.slots_of_op.get(op).copied() {
            self.relink(ret);
            self.relink(call);
        }
    }

    fn unlink(&mut self, slot: usize) {
        let (prev, next) = (self.prev[slot], self.next[slot]);
        self.next[prev] = next;
        self.prev[next] = prev;
    }

    fn relink(&mut self, slot: usize) {
        let (prev, next) = (self.prev[slot], self.next[slot]);
        self.next[prev] = slot;
        self.prev[next] = slot;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(list: &EntryList) -> Vec<(usize, EntryKind)> {
        let mut out = Vec::new();
        let mut slot = list.next(HEAD);
        while list.entry(slot).op != usize::MAX {
            out.push((list.entry(slot).op, list.entry(slot).kind));
            slot = list.next(slot);
        }
        out
    }

    #[test]
    fn calls_sort_before_returns_at_equal_times() {
        let list = EntryList::new(2, [(0, 0, 5), (1, 5, 6)]);
        use EntryKind::*;
        assert_eq!(
            walk(&list),
            [(0, Call), (1, Call), (0, Return), (1, Return)]
        );
    }

    #[test]
    fn lift_and_unlift_in_reverse_order_restore_the_list() {
        use EntryKind::*;
        let mut list = EntryList::new(3, [(0, 0, 1), (1, 2, 3), (2, 1, 4)]);
        let full = walk(&list);
        list.lift(0);
        list.lift(2);
        assert_eq!(walk(&list), [(1, Call), (1, Return)]);
        list.unlift(2);
        list.unlift(0);
        assert_eq!(walk(&list), full);
    }
}
