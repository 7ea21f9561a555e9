//! The sequential specification a history is checked against.
//!
//! A history is linearizable (Herlihy & Wing 1990) if its operations can be
//! put in one order that respects real time (an operation that completed
//! before another was invoked comes first) and in which every output is the
//! one the sequential specification gives from the state reached so far. A
//! [`Model`] is that specification, written as a pure step function so the
//! search can memoize states (Lowe 2017, "Testing for linearizability",
//! section 4), plus the keys each input touches so a history can be split
//! into independent parts (Horn & Kroening 2015, "Faster linearizability
//! checking via P-compositionality").

use std::fmt::Debug;
use std::hash::Hash;

/// A sequential specification of the object under test.
///
/// The methods take `&self` so a model can carry configuration, such as the
/// znodes that existed before the history was recorded.
pub trait Model {
    /// The object's state. The search memoizes (linearized set, state)
    /// pairs, so it must be cheap to clone and hash: keep it to the keys of
    /// one partition.
    type State: Clone + Eq + Hash + Debug;
    /// What a client asks.
    type Input: Debug;
    /// What a client gets back.
    type Output: Debug;
    /// A part of the state an input reads or writes (a znode path).
    type Key: Clone + Ord + Debug;

    /// The state before the history, restricted to `keys`, the sorted keys
    /// of one partition.
    fn init(&self, keys: &[Self::Key]) -> Self::State;

    /// The state after `input` returned `output` from `state`, or `None` if
    /// that output is impossible from that state.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: &Self::Output,
    ) -> Option<Self::State>;

    /// Every state `input` can lead to from `state`, whatever output it
    /// produced: used for operations whose outcome is unknown. Not taking
    /// effect needs no entry (the search also tries never linearizing the
    /// operation), so `state` itself may be left out, and should be: an
    /// entry that changes nothing only makes the search longer.
    fn step_unknown(&self, state: &Self::State, input: &Self::Input) -> Vec<Self::State>;

    /// The keys `input` reads or writes. Inputs with disjoint keys must be
    /// independent: neither may change the other's output or effect. That
    /// is what makes checking each group of connected keys on its own
    /// sound, and what lets the search delay an unknown-outcome operation
    /// past operations on other keys. An input with no keys is not checked.
    fn keys(&self, input: &Self::Input) -> Vec<Self::Key>;

    /// Whether `input` never changes the state (a read). An operation with
    /// such an input and an unknown outcome constrains nothing, so it is
    /// left out of the search.
    fn is_read_only(&self, input: &Self::Input) -> bool {
        let _ = input;
        false
    }
}
