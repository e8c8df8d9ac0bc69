//! Spreading opens by load: power of two choices over a tiny random source.
//!
//! Picking the least loaded session of all makes every handle that looked at the same moment
//! pile onto the same session; picking two at random and taking the lighter (Mitzenmacher's
//! "power of two choices", what `tower::balance::p2c` does) spreads them nearly as well as the
//! best choice while no two handles agree on one session for long.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// xorshift64*: fast, small, and plenty for picking sessions (not for anything secret).
#[derive(Debug, Clone)]
pub(crate) struct XorShift(u64);

impl XorShift {
    /// Seeded from the standard library's randomly keyed hasher, so handles differ.
    pub(crate) fn new() -> Self {
        let mut h = RandomState::new().build_hasher();
        h.write_usize(&h as *const _ as usize);
        XorShift::seeded(h.finish())
    }

    /// A fixed seed, for tests.
    pub(crate) fn seeded(seed: u64) -> Self {
        XorShift(seed | 1) // never 0: xorshift would stay 0
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (((self.next() >> 32) * n as u64) >> 32) as usize
    }
}

/// The order in which to try sessions whose loads are `loads` (by position): two picked at
/// random, the lighter first, then the other, then the rest from the lightest.
pub(crate) fn order(rng: &mut XorShift, loads: &[usize]) -> Vec<usize> {
    let n = loads.len();
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return out;
    }
    let a = rng.below(n);
    if n > 1 {
        let b = (a + 1 + rng.below(n - 1)) % n; // distinct from a
        let (first, second) = if loads[b] < loads[a] { (b, a) } else { (a, b) };
        out.push(first);
        out.push(second);
    } else {
        out.push(a);
    }
    let mut rest: Vec<usize> = (0..n).filter(|i| !out.contains(i)).collect();
    rest.sort_by_key(|&i| loads[i]);
    out.extend(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_session_once_the_chosen_pair_first() {
        let mut rng = XorShift::seeded(7);
        for n in 0..6 {
            let loads: Vec<usize> = (0..n).map(|i| (i * 7) % 5).collect();
            for _ in 0..50 {
                let o = order(&mut rng, &loads);
                let mut sorted = o.clone();
                sorted.sort_unstable();
                assert_eq!(sorted, (0..n).collect::<Vec<_>>());
                if n > 1 {
                    assert!(loads[o[0]] <= loads[o[1]]);
                    assert!(o[2..].windows(2).all(|w| loads[w[0]] <= loads[w[1]]));
                }
            }
        }
    }

    #[test]
    fn the_heaviest_session_is_never_first_and_the_others_share() {
        // Loads 0, 0, 0, 100: two choices never pick the loaded one first, and spread the rest.
        let mut rng = XorShift::seeded(42);
        let loads = [0, 0, 0, 100];
        let mut firsts = [0usize; 4];
        for _ in 0..3000 {
            firsts[order(&mut rng, &loads)[0]] += 1;
        }
        assert_eq!(firsts[3], 0, "{firsts:?}");
        assert!(firsts[..3].iter().all(|&c| c > 500), "{firsts:?}");
    }

    #[test]
    fn below_stays_below() {
        let mut rng = XorShift::new();
        for n in 1..20 {
            for _ in 0..100 {
                assert!(rng.below(n) < n);
            }
        }
    }
}
