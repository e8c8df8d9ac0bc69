//! A map for keys a peer may pick: a short vector scanned in order while it holds few entries,
//! an ordered map once it holds more.
//!
//! xtaci's wire maps the peer's 32-bit stream ids to the core's, and keeps v2's counts by the
//! core's id. A session usually has a few streams alive, and a stream per request inserts and
//! removes an entry in each map per stream: a B-tree's node handling for that cost about 1,000
//! instructions of a churn cycle's 29,000 (callgrind, the compare bench). A scan of up to
//! [`SMALL`] entries costs a few comparisons; past that many the ordered map takes over, whose
//! cost grows with the logarithm of the entries whatever keys a hostile peer picks (no hash to
//! defeat), and it hands back to the vector once the map has shrunk to half of that.

use std::collections::BTreeMap;

/// Entries kept in the vector at most.
const SMALL: usize = 16;

/// A map from `K` to `V`: see the module's doc.
#[derive(Debug)]
pub(crate) struct SmallMap<K, V> {
    /// The entries, while `big` is empty.
    small: Vec<(K, V)>,
    /// The entries, once more than [`SMALL`] were held at once, until they fall to half.
    big: BTreeMap<K, V>,
}

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        SmallMap {
            small: Vec::new(),
            big: BTreeMap::new(),
        }
    }
}

impl<K: Ord + Copy, V> SmallMap<K, V> {
    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        if self.big.is_empty() {
            self.small.iter().find(|(k, _)| k == key).map(|(_, v)| v)
        } else {
            self.big.get(key)
        }
    }

    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        if self.big.is_empty() {
            self.small
                .iter_mut()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
        } else {
            self.big.get_mut(key)
        }
    }

    /// Inserts `value` at `key`, returning the value it replaced.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        if !self.big.is_empty() {
            return self.big.insert(key, value);
        }
        if let Some((_, v)) = self.small.iter_mut().find(|(k, _)| *k == key) {
            return Some(std::mem::replace(v, value));
        }
        if self.small.len() < SMALL {
            self.small.push((key, value));
        } else {
            self.big.extend(self.small.drain(..));
            self.big.insert(key, value);
        }
        None
    }

    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        if self.big.is_empty() {
            let i = self.small.iter().position(|(k, _)| k == key)?;
            return Some(self.small.swap_remove(i).1);
        }
        let v = self.big.remove(key);
        if self.big.len() <= SMALL / 2 {
            self.small.extend(std::mem::take(&mut self.big));
        }
        v
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.small.len() + self.big.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_an_ordered_map_through_growth_and_shrinking() {
        let mut ours = SmallMap::default();
        let mut model = BTreeMap::new();
        // A pseudo-random walk of inserts and removes over a key range that makes the map grow
        // past the vector, shrink back, and grow again.
        let mut x: u32 = 12345;
        for step in 0..20_000u32 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let range = if (step / 2_000) % 2 == 0 { 64 } else { 12 };
            let key = (x >> 8) % range;
            if (x >> 4) % 3 == 0 {
                assert_eq!(ours.remove(&key), model.remove(&key), "remove {key}");
            } else {
                assert_eq!(
                    ours.insert(key, step),
                    model.insert(key, step),
                    "insert {key}"
                );
            }
            assert_eq!(ours.len(), model.len());
            assert_eq!(ours.get(&key), model.get(&key));
            if let Some(v) = ours.get_mut(&key) {
                *v += 1;
                *model.get_mut(&key).expect("present in both") += 1;
            }
            assert!(
                ours.big.is_empty() || ours.small.is_empty(),
                "one of the two holds all"
            );
        }
    }
}
