//! Splitting a history into parts that can be checked on their own.
//!
//! Linearizability is local (Herlihy & Wing 1990, theorem 1): a history of
//! independent objects is linearizable iff each object's subhistory is. Horn
//! & Kroening (2015, "Faster linearizability checking via
//! P-compositionality") extend this to a partition of one object's state,
//! such as a map's keys. Here each input names the keys it touches; keys an
//! operation touches together (a ZooKeeper `multi`) are joined with
//! union-find, and each connected group of keys, with the operations on
//! it, is one partition. The search is exponential in the concurrency of
//! what it checks at once, so checking fifty small partitions is far
//! cheaper than one large history.
//!
//! Operations with no keys (a `sync`) are in no partition and not checked.

use std::collections::BTreeMap;

use crate::history::{History, OpId};
use crate::model::Model;

/// A group of keys and the operations that touch them.
#[derive(Debug)]
pub(crate) struct Partition<K> {
    /// The keys, sorted.
    pub(crate) keys: Vec<K>,
    /// The operations, by id.
    pub(crate) operations: Vec<OpId>,
    /// For each operation, the positions of its keys in `keys`.
    pub(crate) key_ids: Vec<Vec<usize>>,
}

/// A history's partitions.
#[derive(Debug)]
pub(crate) struct Partitioning<K> {
    /// Ordered by their first operation, so the order is deterministic.
    pub(crate) partitions: Vec<Partition<K>>,
    /// Operations that touch no key.
    pub(crate) without_keys: Vec<OpId>,
}

/// Groups a history's operations by connected keys.
pub(crate) fn partition<M: Model>(
    model: &M,
    history: &History<M::Input, M::Output>,
) -> Partitioning<M::Key> {
    let op_keys: Vec<Vec<M::Key>> = history
        .operations()
        .iter()
        .map(|operation| {
            let mut keys = model.keys(&operation.input);
            keys.sort();
            keys.dedup();
            keys
        })
        .collect();

    // Global key ids in key order, so each partition's keys come out sorted.
    let mut key_index: BTreeMap<&M::Key, usize> =
        op_keys.iter().flatten().map(|key| (key, 0)).collect();
    for (id, slot) in key_index.values_mut().enumerate() {
        *slot = id;
    }
    let global_ids: Vec<Vec<usize>> = op_keys
        .iter()
        .map(|keys| {
            keys.iter()
                .filter_map(|key| key_index.get(key).copied())
                .collect()
        })
        .collect();

    let mut components = UnionFind::new(key_index.len());
    for ids in &global_ids {
        for pair in ids.windows(2) {
            components.union(pair[0], pair[1]);
        }
    }

    let keys_by_id: Vec<&M::Key> = key_index.keys().copied().collect();
    let mut partition_of_root: BTreeMap<usize, usize> = BTreeMap::new();
    let mut partitions: Vec<Partition<M::Key>> = Vec::new();
    let mut without_keys = Vec::new();
    for (operation, ids) in history.operations().iter().zip(&global_ids) {
        let Some(&first_key) = ids.first() else {
            without_keys.push(operation.id);
            continue;
        };
        let root = components.find(first_key);
        let next_index = partitions.len();
        let index = *partition_of_root.entry(root).or_insert(next_index);
        if index == next_index {
            partitions.push(Partition {
                keys: Vec::new(),
                operations: Vec::new(),
                key_ids: Vec::new(),
            });
        }
        partitions[index].operations.push(operation.id);
        partitions[index].key_ids.push(ids.clone());
    }

    // Each partition's keys are the keys of its component, in key order;
    // rewrite the global ids of its operations' keys as positions in them.
    let mut members_of_root: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for id in 0..keys_by_id.len() {
        members_of_root
            .entry(components.find(id))
            .or_default()
            .push(id);
    }
    for (root, index) in partition_of_root {
        let members = members_of_root.remove(&root).unwrap_or_default();
        let partition = &mut partitions[index];
        for ids in &mut partition.key_ids {
            for id in ids.iter_mut() {
                *id = members.binary_search(id).unwrap_or_default();
            }
        }
        partition.keys = members.iter().map(|&id| keys_by_id[id].clone()).collect();
    }
    Partitioning {
        partitions,
        without_keys,
    }
}

/// Disjoint sets of key ids, with path halving and union by size
/// (Tarjan 1975); iterative.
#[derive(Debug)]
struct UnionFind {
    parent: Vec<usize>,
    size: Vec<usize>,
}

impl UnionFind {
    fn new(count: usize) -> Self {
        Self {
            parent: (0..count).collect(),
            size: vec![1; count],
        }
    }

    fn find(&mut self, mut id: usize) -> usize {
        while self.parent[id] != id {
            self.parent[id] = self.parent[self.parent[id]];
            id = self.parent[id];
        }
        id
    }

    fn union(&mut self, a: usize, b: usize) {
        let (mut a, mut b) = (self.find(a), self.find(b));
        if a == b {
            return;
        }
        if self.size[a] < self.size[b] {
            std::mem::swap(&mut a, &mut b);
        }
        self.parent[b] = a;
        self.size[a] += self.size[b];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs are the keys they touch; outputs are unused.
    #[derive(Debug)]
    struct Keys;

    impl Model for Keys {
        type State = ();
        type Input = Vec<&'static str>;
        type Output = ();
        type Key = &'static str;
        fn init(&self, _: &[&'static str]) {}
        fn step(&self, _: &(), _: &Self::Input, _: &()) -> Option<()> {
            Some(())
        }
        fn step_unknown(&self, _: &(), _: &Self::Input) -> Vec<()> {
            vec![()]
        }
        fn keys(&self, input: &Self::Input) -> Vec<&'static str> {
            input.clone()
        }
    }

    fn partitions_of(inputs: &[&[&'static str]]) -> Partitioning<&'static str> {
        let mut history = History::new();
        for (time, input) in inputs.iter().enumerate() {
            history
                .push_completed(0, time as u64, time as u64, input.to_vec(), ())
                .unwrap();
        }
        partition(&Keys, &history)
    }

    #[test]
    fn a_multi_joins_the_partitions_of_its_keys() {
        let partitioning = partitions_of(&[
            &["/a"],
            &["/b"],
            &["/c"],
            &[],
            &["/c", "/a"],
            &["/d"],
            &["/a"],
        ]);
        let summary: Vec<(Vec<&str>, Vec<usize>)> = partitioning
            .partitions
            .iter()
            .map(|p| {
                (
                    p.keys.clone(),
                    p.operations.iter().map(|op| op.index()).collect(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (vec!["/a", "/c"], vec![0, 2, 4, 6]),
                (vec!["/b"], vec![1]),
                (vec!["/d"], vec![5]),
            ]
        );
        assert_eq!(
            partitioning
                .without_keys
                .iter()
                .map(|op| op.index())
                .collect::<Vec<_>>(),
            [3]
        );
        // Key ids are positions in the partition's sorted keys.
        assert_eq!(
            partitioning.partitions[0].key_ids,
            [vec![0], vec![1], vec![0, 1], vec![0]]
        );
    }

    #[test]
    fn chains_of_multis_join_transitively() {
        let partitioning = partitions_of(&[&["/a", "/b"], &["/c", "/d"], &["/b", "/c"], &["/e"]]);
        assert_eq!(partitioning.partitions.len(), 2);
        assert_eq!(partitioning.partitions[0].keys, ["/a", "/b", "/c", "/d"]);
        assert_eq!(partitioning.partitions[0].operations.len(), 3);
    }
}
