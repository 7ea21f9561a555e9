//! zxids from log positions.
//!
//! ZooKeeper's zxid is `epoch << 32 | counter`. Here the epoch is the Raft
//! term of the entry and the counter is the entry's distance from the first
//! entry of that term in the log. A new leader's first entry (the empty
//! entry Raft appends on election) therefore takes counter 0, as
//! ZooKeeper's NEWLEADER zxid does, and its first transaction counter 1.
//!
//! Every server derives the same zxid for the same entry: by Raft's log
//! matching property, servers whose logs share an entry share every entry
//! before it, so they agree on where each term starts. The leader can
//! predict the zxid of an entry it is about to propose (it knows the index
//! the entry will take), which is how a prepared transaction carries its
//! final zxid.

use crate::error::ConsensusError;

/// The largest counter a term can use. ZooKeeper forces a new election
/// when the counter would overflow; a leader here stops accepting
/// proposals at this point ([`ConsensusError::TermExhausted`]) and the
/// caller transfers leadership.
pub const MAX_COUNTER: u64 = u32::MAX as u64 - 1;

/// `epoch << 32 | counter`.
pub fn make_zxid(epoch: u64, counter: u64) -> i64 {
    ((epoch << 32) | (counter & 0xffff_ffff)) as i64
}

/// The epoch (high 32 bits) of a zxid.
pub fn epoch_of(zxid: i64) -> u64 {
    (zxid as u64) >> 32
}

/// The counter (low 32 bits) of a zxid.
pub fn counter_of(zxid: i64) -> u64 {
    (zxid as u64) & 0xffff_ffff
}

/// Follows the log in index order and gives each entry its zxid.
///
/// It only needs to know where the current term started: the state is
/// `(term, first index of that term)`. It is resumed after a restart from
/// the last applied entry's index and zxid ([`ZxidCounter::resume`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ZxidCounter {
    term: u64,
    term_start: u64,
}

impl ZxidCounter {
    /// Resumes after the entry at `index` whose zxid was `zxid` (0, 0 for
    /// an empty log).
    pub fn resume(index: u64, zxid: i64) -> ZxidCounter {
        let counter = counter_of(zxid);
        ZxidCounter {
            term: epoch_of(zxid),
            term_start: index.saturating_sub(counter),
        }
    }

    /// The zxid of the entry at `index` of `term`, which must be the next
    /// entry in log order after the ones already given (terms never
    /// decrease along a log).
    pub fn next(&mut self, index: u64, term: u64) -> Result<i64, ConsensusError> {
        if term < self.term || index < self.term_start {
            return Err(ConsensusError::ZxidOrder {
                index,
                term,
                current_term: self.term,
                term_start: self.term_start,
            });
        }
        if term != self.term {
            self.term = term;
            self.term_start = index;
        }
        let counter = index - self.term_start;
        if counter > MAX_COUNTER {
            return Err(ConsensusError::TermExhausted { term });
        }
        Ok(make_zxid(term, counter))
    }

    /// The zxid the entry at `index` would get if it belonged to the term
    /// being followed (for a leader predicting its next proposal).
    pub fn predict(&self, index: u64) -> Result<i64, ConsensusError> {
        let counter = index.saturating_sub(self.term_start);
        if counter > MAX_COUNTER {
            return Err(ConsensusError::TermExhausted { term: self.term });
        }
        Ok(make_zxid(self.term, counter))
    }

    /// The term being followed.
    pub fn term(&self) -> u64 {
        self.term
    }

    /// The index of the first entry of that term.
    pub fn term_start(&self) -> u64 {
        self.term_start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_restart_at_each_term() {
        let mut z = ZxidCounter::default();
        let log = [(1, 1), (2, 1), (3, 1), (4, 3), (5, 3), (6, 4)];
        let zxids: Vec<i64> = log
            .iter()
            .map(|&(index, term)| z.next(index, term).expect("in order"))
            .collect();
        assert_eq!(
            zxids,
            vec![
                make_zxid(1, 0),
                make_zxid(1, 1),
                make_zxid(1, 2),
                make_zxid(3, 0),
                make_zxid(3, 1),
                make_zxid(4, 0)
            ]
        );
    }

    #[test]
    fn resume_continues_where_the_last_entry_left_off() {
        let mut z = ZxidCounter::default();
        for (index, term) in [(1, 1), (2, 2), (3, 2), (4, 2)] {
            z.next(index, term).expect("in order");
        }
        let last = make_zxid(2, 2);
        let mut resumed = ZxidCounter::resume(4, last);
        assert_eq!(resumed, z);
        assert_eq!(resumed.next(5, 2).expect("next"), make_zxid(2, 3));
        assert_eq!(z.predict(5).expect("predict"), make_zxid(2, 3));
    }

    #[test]
    fn going_backwards_is_an_error() {
        let mut z = ZxidCounter::resume(10, make_zxid(3, 4));
        assert!(z.next(11, 2).is_err());
        assert!(z.next(5, 3).is_err());
    }

    proptest::proptest! {
        /// Along any log (terms never decrease), zxids strictly increase,
        /// and a counter resumed after any entry continues exactly as the
        /// one that saw the whole log.
        #[test]
        fn zxids_increase_and_resume_anywhere(
            steps in proptest::collection::vec(0..3u64, 1..200),
            cut in proptest::prelude::any::<proptest::sample::Index>(),
        ) {
            let mut term = 1;
            let log: Vec<(u64, u64)> = steps
                .iter()
                .enumerate()
                .map(|(i, step)| {
                    term += step / 2; // a new term now and then
                    (i as u64 + 1, term)
                })
                .collect();
            let mut z = ZxidCounter::default();
            let zxids: Vec<i64> = log.iter().map(|&(i, t)| z.next(i, t).expect("in order")).collect();
            proptest::prop_assert!(zxids.windows(2).all(|w| w[0] < w[1]));
            let at = cut.index(log.len());
            let mut resumed = ZxidCounter::resume(log[at].0, zxids[at]);
            for (k, &(i, t)) in log.iter().enumerate().skip(at + 1) {
                proptest::prop_assert_eq!(resumed.next(i, t).expect("in order"), zxids[k]);
            }
        }
    }

    #[test]
    fn zxid_parts_round_trip() {
        let zxid = make_zxid(7, 42);
        assert_eq!((epoch_of(zxid), counter_of(zxid)), (7, 42));
        assert_eq!(zxid, 0x7_0000_002a);
    }
}
