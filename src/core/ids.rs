//! The stream id allocator: a bitmap of the 65,536 ids, first-fit from one end.
//!
//! The client side takes the lowest free id, the server side the highest (PROTOCOL.md 9), so the
//! ids of two sessions of this crate meet only when the id space is nearly full: a simultaneous
//! open of the same id needs nearly 65,535 streams open. (A next-fit cursor would not do: once ids
//! are recycled, the two sides' cursors cross every 65,535 opens, whatever is open.) Id 0 is never
//! allocated.

/// Which way the allocator scans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Upward from 1 (the client side).
    Up,
    /// Downward from 65,535 (the server side).
    Down,
}

const WORDS: usize = 65_536 / 64;

/// The set of ids in use, with where the next first-fit scan starts.
#[derive(Debug)]
pub(crate) struct Ids {
    bits: Box<[u64; WORDS]>,
    in_use: usize,
    /// No id is free before this one in the scan direction: where the next scan starts.
    hint: u16,
    dir: Direction,
}

impl Ids {
    pub(crate) fn new(dir: Direction) -> Ids {
        let mut bits = Box::new([0u64; WORDS]);
        bits[0] = 1; // id 0 is reserved: permanently marked
        Ids {
            bits,
            in_use: 0,
            hint: match dir {
                Direction::Up => 1,
                Direction::Down => u16::MAX,
            },
            dir,
        }
    }

    /// Number of ids in use (id 0 not counted).
    pub(crate) fn in_use(&self) -> usize {
        self.in_use
    }

    pub(crate) fn contains(&self, id: u16) -> bool {
        id != 0 && self.bits[id as usize / 64] & (1 << (id % 64)) != 0
    }

    /// Marks `id` in use; returns false if it already was (or is 0).
    pub(crate) fn insert(&mut self, id: u16) -> bool {
        if id == 0 || self.contains(id) {
            return false;
        }
        self.bits[id as usize / 64] |= 1 << (id % 64);
        self.in_use += 1;
        true
    }

    /// Releases `id`; returns false if it was not in use.
    pub(crate) fn remove(&mut self, id: u16) -> bool {
        if !self.contains(id) {
            return false;
        }
        self.bits[id as usize / 64] &= !(1 << (id % 64));
        self.in_use -= 1;
        let before_hint = match self.dir {
            Direction::Up => id < self.hint,
            Direction::Down => id > self.hint,
        };
        if before_hint {
            self.hint = id;
        }
        true
    }

    /// Allocates the first free id from this side's end, or `None` when all 65,535 are in use.
    pub(crate) fn allocate(&mut self) -> Option<u16> {
        if self.in_use == 65_535 {
            return None;
        }
        let id = match self.dir {
            Direction::Up => self.scan_up(self.hint)?,
            Direction::Down => self.scan_down(self.hint)?,
        };
        self.insert(id);
        self.hint = id;
        Some(id)
    }

    /// The first free id at or above `from`.
    fn scan_up(&self, from: u16) -> Option<u16> {
        let mut w = from as usize / 64;
        let mut word = self.bits[w] | ((1u64 << (from % 64)) - 1);
        loop {
            if word != u64::MAX {
                return Some((w * 64 + word.trailing_ones() as usize) as u16);
            }
            w += 1;
            if w == WORDS {
                return None;
            }
            word = self.bits[w];
        }
    }

    /// The first free id at or below `from`.
    fn scan_down(&self, from: u16) -> Option<u16> {
        let mut w = from as usize / 64;
        let shift = from % 64;
        // Treat the bits above `from` in its word as taken.
        let above = if shift == 63 {
            0
        } else {
            u64::MAX << (shift + 1)
        };
        let mut word = self.bits[w] | above;
        loop {
            if word != u64::MAX {
                return Some((w * 64 + 63 - word.leading_ones() as usize) as u16);
            }
            if w == 0 {
                return None;
            }
            w -= 1;
            word = self.bits[w];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_allocates_the_lowest_free_id() {
        let mut ids = Ids::new(Direction::Up);
        assert_eq!(ids.allocate(), Some(1));
        assert_eq!(ids.allocate(), Some(2));
        assert_eq!(ids.allocate(), Some(3));
        assert!(ids.remove(2));
        // First-fit: the lowest free id, so this side's ids stay at its own end.
        assert_eq!(ids.allocate(), Some(2));
        assert_eq!(ids.allocate(), Some(4));
        assert_eq!(ids.in_use(), 4);
    }

    #[test]
    fn two_sides_meet_only_when_the_space_is_nearly_full() {
        // Both sides' views of one session: ids taken by either side are in use on both. Open and
        // close in a pattern that recycles ids many times over, with few open at once.
        let (mut c, mut s) = (Ids::new(Direction::Up), Ids::new(Direction::Down));
        let mut open: Vec<u16> = Vec::new();
        for round in 0..300_000u32 {
            let (mine, theirs) = if round % 2 == 0 {
                (&mut c, &mut s)
            } else {
                (&mut s, &mut c)
            };
            let id = mine.allocate().unwrap();
            assert!(
                theirs.insert(id),
                "round {round}: id {id} taken by both sides"
            );
            open.push(id);
            if open.len() > 100 {
                let old = open.remove((round as usize * 7) % open.len());
                assert!(c.remove(old) && s.remove(old));
            }
        }
        assert!(open.iter().all(|&id| id <= 101 || id >= 65_535 - 101));
    }

    #[test]
    fn server_allocates_downward_from_max() {
        let mut ids = Ids::new(Direction::Down);
        assert_eq!(ids.allocate(), Some(65_535));
        assert_eq!(ids.allocate(), Some(65_534));
        assert!(ids.insert(65_533));
        assert_eq!(ids.allocate(), Some(65_532));
        assert!(ids.remove(65_534));
        assert_eq!(ids.allocate(), Some(65_534));
    }

    #[test]
    fn exhausts_and_recovers_in_both_directions() {
        for dir in [Direction::Up, Direction::Down] {
            let mut ids = Ids::new(dir);
            let mut seen = vec![false; 65_536];
            for _ in 0..65_535 {
                let id = ids.allocate().expect("free id");
                assert_ne!(id, 0);
                assert!(!seen[id as usize], "{id} allocated twice");
                seen[id as usize] = true;
            }
            assert_eq!(ids.allocate(), None);
            assert!(ids.remove(777));
            assert_eq!(ids.allocate(), Some(777));
            assert_eq!(ids.allocate(), None);
        }
    }

    #[test]
    fn recycles_without_ever_handing_out_zero() {
        let mut ids = Ids::new(Direction::Up);
        for _ in 0..200_000 {
            let id = ids.allocate().unwrap();
            assert_ne!(id, 0);
            assert!(ids.remove(id));
        }
        let mut ids = Ids::new(Direction::Down);
        for _ in 0..200_000 {
            let id = ids.allocate().unwrap();
            assert_ne!(id, 0);
            assert!(ids.remove(id));
        }
        assert_eq!(ids.in_use(), 0);
        assert!(!ids.insert(0));
        assert!(!ids.remove(0));
    }
}
