//! The dirty byte ranges of one file: data written but not yet synced.
//!
//! Pure bookkeeping with no I/O, so the merge rules are tested on their
//! own. Ranges never overlap and never touch: a write that overlaps or
//! abuts existing ranges is merged with them into one, its bytes winning
//! (the newest write is what a read must see). A write at the end of an
//! existing range (a log being appended to, the common case for a
//! write-ahead log) grows that range's buffer in place, so appending `n`
//! bytes in small writes costs `O(n)`, not `O(n²)`.

use std::collections::BTreeMap;

/// Non-overlapping, non-adjacent dirty ranges, keyed by start offset.
#[derive(Debug, Default)]
pub(crate) struct Extents {
    ranges: BTreeMap<u64, Vec<u8>>,
    bytes: u64,
}

/// Offset one past the last byte of a range. Every stored range was
/// checked for overflow on insert (`insert` refuses ranges past
/// `u64::MAX`), so this cannot wrap; it saturates rather than panic.
fn end_of(start: u64, data: &[u8]) -> u64 {
    start.saturating_add(len_of(data))
}

fn len_of(data: &[u8]) -> u64 {
    u64::try_from(data.len()).unwrap_or(u64::MAX)
}

/// `usize` index of `offset - base` into a buffer that is known to be in
/// memory (so the difference fits in `usize`).
fn index(offset: u64, base: u64) -> usize {
    usize::try_from(offset.saturating_sub(base)).unwrap_or(usize::MAX)
}

impl Extents {
    /// Total dirty bytes held.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// One past the last dirty byte, or `None` when nothing is dirty.
    pub(crate) fn end(&self) -> Option<u64> {
        self.ranges
            .iter()
            .next_back()
            .map(|(start, data)| end_of(*start, data))
    }

    /// The ranges in offset order, for writing them back.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, &[u8])> {
        self.ranges
            .iter()
            .map(|(start, data)| (*start, data.as_slice()))
    }

    /// Records `data` written at `offset`. Returns `false` (and records
    /// nothing) when the range would end past `u64::MAX`.
    #[must_use]
    pub(crate) fn insert(&mut self, offset: u64, data: &[u8]) -> bool {
        if data.is_empty() {
            return true;
        }
        let Some(end) = offset.checked_add(len_of(data)) else {
            return false;
        };
        // Every range that overlaps or touches [offset, end): ranges
        // starting at or before `end` whose end is at or after `offset`.
        // Ranges are disjoint and sorted, so walking back from `end` and
        // stopping at the first that ends before `offset` finds them all.
        let touching: Vec<u64> = self
            .ranges
            .range(..=end)
            .rev()
            .take_while(|(start, data)| end_of(**start, data) >= offset)
            .map(|(start, _)| *start)
            .collect();

        // The fast path: one range that starts at or before `offset`
        // absorbs the write in place (an append or an overwrite inside it).
        if let [start] = touching.as_slice()
            && *start <= offset
            && let Some(buffer) = self.ranges.get_mut(start)
        {
            let old_len = len_of(buffer);
            let at = index(offset, *start);
            let needed = index(end, *start);
            if buffer.len() < needed {
                buffer.resize(needed, 0);
            }
            buffer[at..needed].copy_from_slice(data);
            self.bytes = self.bytes - old_len + len_of(buffer);
            return true;
        }

        // The general case: merge everything touching into one buffer.
        // `touching` is in descending start order; the last is the lowest.
        let new_start = touching.last().map_or(offset, |s| (*s).min(offset));
        let mut merged_end = end;
        let mut removed = Vec::with_capacity(touching.len());
        for start in &touching {
            if let Some(buffer) = self.ranges.remove(start) {
                merged_end = merged_end.max(end_of(*start, &buffer));
                self.bytes -= len_of(&buffer);
                removed.push((*start, buffer));
            }
        }
        let mut merged = vec![0u8; index(merged_end, new_start)];
        for (start, buffer) in &removed {
            let at = index(*start, new_start);
            merged[at..at + buffer.len()].copy_from_slice(buffer);
        }
        let at = index(offset, new_start);
        merged[at..at + data.len()].copy_from_slice(data);
        self.bytes += len_of(&merged);
        self.ranges.insert(new_start, merged);
        true
    }

    /// Copies the dirty bytes that fall in `[offset, offset + buf.len())`
    /// over `buf` (which holds what the backing file has there).
    pub(crate) fn overlay(&self, offset: u64, buf: &mut [u8]) {
        let Some(end) = offset.checked_add(len_of(buf)) else {
            return;
        };
        // The range that starts at or before `offset` may reach into buf;
        // every range starting inside [offset, end) does.
        let before = self.ranges.range(..offset).next_back();
        let inside = self.ranges.range(offset..end);
        for (start, data) in before.into_iter().chain(inside) {
            let from = (*start).max(offset);
            let to = end_of(*start, data).min(end);
            if from >= to {
                continue;
            }
            let src = index(from, *start)..index(to, *start);
            let dst = index(from, offset)..index(to, offset);
            buf[dst].copy_from_slice(&data[src]);
        }
    }

    /// Forgets every dirty byte at or past `len` (the file was cut there).
    pub(crate) fn truncate(&mut self, len: u64) {
        let cut: Vec<u64> = self.ranges.range(len..).map(|(s, _)| *s).collect();
        for start in cut {
            if let Some(buffer) = self.ranges.remove(&start) {
                self.bytes -= len_of(&buffer);
            }
        }
        if let Some((start, buffer)) = self.ranges.range_mut(..len).next_back()
            && end_of(*start, buffer) > len
        {
            let keep = index(len, *start);
            self.bytes -= len_of(&buffer[keep..]);
            buffer.truncate(keep);
        }
    }

    /// Forgets everything; returns how many bytes were dropped.
    pub(crate) fn clear(&mut self) -> u64 {
        let dropped = self.bytes;
        self.ranges.clear();
        self.bytes = 0;
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `[offset, offset + len)` as a file would: zeros under the
    /// dirty ranges (the "backing file" here is all zeros).
    fn read(extents: &Extents, offset: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        extents.overlay(offset, &mut buf);
        buf
    }

    fn ranges(extents: &Extents) -> Vec<(u64, usize)> {
        extents.iter().map(|(s, d)| (s, d.len())).collect()
    }

    fn insert(extents: &mut Extents, offset: u64, data: &[u8]) {
        assert!(extents.insert(offset, data), "insert at {offset}");
        let sum: u64 = extents.iter().map(|(_, d)| d.len() as u64).sum();
        assert_eq!(extents.bytes(), sum, "byte count after insert at {offset}");
        let spans: Vec<(u64, u64)> = extents
            .iter()
            .map(|(s, d)| (s, s + d.len() as u64))
            .collect();
        for pair in spans.windows(2) {
            assert!(pair[0].1 < pair[1].0, "ranges overlap or touch: {spans:?}");
        }
    }

    #[test]
    fn appends_grow_one_range() {
        let mut e = Extents::default();
        insert(&mut e, 0, b"abc");
        insert(&mut e, 3, b"def");
        insert(&mut e, 6, b"g");
        assert_eq!(ranges(&e), vec![(0, 7)]);
        assert_eq!(read(&e, 0, 7), b"abcdefg");
        assert_eq!(e.end(), Some(7));
    }

    #[test]
    fn disjoint_writes_stay_apart_and_holes_read_as_backing() {
        let mut e = Extents::default();
        insert(&mut e, 10, b"xx");
        insert(&mut e, 0, b"a");
        assert_eq!(ranges(&e), vec![(0, 1), (10, 2)]);
        assert_eq!(read(&e, 0, 12), b"a\0\0\0\0\0\0\0\0\0xx");
        assert_eq!(e.bytes(), 3);
    }

    #[test]
    fn a_write_spanning_several_ranges_merges_them_newest_wins() {
        let mut e = Extents::default();
        insert(&mut e, 0, b"aaaa");
        insert(&mut e, 6, b"bbbb");
        insert(&mut e, 12, b"cc");
        insert(&mut e, 2, b"XXXXXX"); // [2, 8): over the end of a, the gap, the start of b
        assert_eq!(ranges(&e), vec![(0, 10), (12, 2)]);
        assert_eq!(read(&e, 0, 14), b"aaXXXXXXbb\0\0cc");
    }

    #[test]
    fn a_write_starting_before_a_range_and_inside_it_merges() {
        let mut e = Extents::default();
        insert(&mut e, 4, b"bbbb");
        insert(&mut e, 2, b"XX"); // touches the range's start
        assert_eq!(ranges(&e), vec![(2, 6)]);
        insert(&mut e, 0, b"YYYY"); // overlaps it
        assert_eq!(ranges(&e), vec![(0, 8)]);
        assert_eq!(read(&e, 0, 8), b"YYYYbbbb");
    }

    #[test]
    fn a_write_covering_everything_replaces_it() {
        let mut e = Extents::default();
        insert(&mut e, 3, b"a");
        insert(&mut e, 5, b"b");
        insert(&mut e, 0, b"0123456789");
        assert_eq!(ranges(&e), vec![(0, 10)]);
        assert_eq!(read(&e, 0, 10), b"0123456789");
    }

    #[test]
    fn overwrite_inside_a_range_changes_only_those_bytes() {
        let mut e = Extents::default();
        insert(&mut e, 100, b"hello world");
        insert(&mut e, 106, b"WORLD");
        assert_eq!(ranges(&e), vec![(100, 11)]);
        assert_eq!(read(&e, 100, 11), b"hello WORLD");
        // A read that starts inside the range and ends past it.
        assert_eq!(read(&e, 108, 5), b"RLD\0\0");
    }

    #[test]
    fn truncate_cuts_and_drops_ranges() {
        let mut e = Extents::default();
        insert(&mut e, 0, b"aaaa");
        insert(&mut e, 10, b"bbbb");
        e.truncate(12);
        assert_eq!(ranges(&e), vec![(0, 4), (10, 2)]);
        assert_eq!(e.bytes(), 6);
        e.truncate(10);
        assert_eq!(ranges(&e), vec![(0, 4)]);
        e.truncate(0);
        assert!(e.is_empty());
        assert_eq!(e.bytes(), 0);
        assert_eq!(e.end(), None);
    }

    #[test]
    fn clear_reports_what_it_dropped() {
        let mut e = Extents::default();
        insert(&mut e, 0, b"abc");
        insert(&mut e, 100, b"de");
        assert_eq!(e.clear(), 5);
        assert!(e.is_empty());
    }

    #[test]
    fn ranges_past_u64_max_are_refused_and_reads_there_do_not_panic() {
        let mut e = Extents::default();
        assert!(!e.insert(u64::MAX - 1, b"abc"));
        assert!(e.is_empty());
        insert(&mut e, u64::MAX - 3, b"abc");
        let mut buf = [0u8; 8];
        e.overlay(u64::MAX - 3, &mut buf); // would end past u64::MAX: ignored
        e.overlay(u64::MAX - 3, &mut buf[..3]);
        assert_eq!(&buf[..3], b"abc");
    }

    /// Random writes against a plain byte array as the model.
    #[test]
    fn random_writes_match_a_flat_model() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |bound: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % bound
        };
        for round in 0..200 {
            let mut e = Extents::default();
            let mut model = vec![0u8; 256];
            let mut written = vec![false; 256];
            for _ in 0..30 {
                let offset = next(240);
                let len = 1 + next(16);
                let byte = u8::try_from(1 + next(250)).unwrap();
                let data = vec![byte; len as usize];
                insert(&mut e, offset, &data);
                for i in offset..offset + len {
                    model[i as usize] = byte;
                    written[i as usize] = true;
                }
                if next(10) == 0 {
                    let cut = next(256);
                    e.truncate(cut);
                    for i in cut as usize..256 {
                        model[i] = 0;
                        written[i] = false;
                    }
                }
            }
            assert_eq!(read(&e, 0, 256), model, "round {round}");
            let dirty = written.iter().filter(|w| **w).count() as u64;
            assert_eq!(e.bytes(), dirty, "round {round}");
        }
    }
}
