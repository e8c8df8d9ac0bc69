//! The stream id allocator: a bitmap of the 65,536 ids, first-fit from one end, with released ids
//! resting for a while before they are handed out again.
//!
//! The client side takes the lowest free id, the server side the highest (docs/PROTOCOL.md 9),
//! so the ids of two sessions of this crate meet only when the id space is nearly full: a simultaneous
//! open of the same id needs nearly every id in use or resting. (A next-fit cursor would not do:
//! once ids are recycled, the two sides' cursors cross every 65,535 opens, whatever is open.)
//!
//! **Resting ids.** The original sends frames for a stream after its FIN answer (a CFM from its
//! reading goroutine, a second FIN when its application closes by id late: docs/PROTOCOL.md 9).
//! If the id just released were handed to the next open, those late frames would land on the new stream
//! (a late FIN ends it before it got a byte). So a released id rests: it is not handed out again
//! until [`REST`] later releases have happened, or until no other id is free (the oldest resting id
//! goes first). A late frame then finds no stream and is ignored. Both sides rest the same ids (each
//! releases an id when its FIN handshake ends), so the meeting point above moves by at most
//! [`REST`] ids from each end: two sessions of this crate collide only when more than
//! 65,535 - 2 x [`REST`] ids are in use at once.
//!
//! Id 0 is never allocated by this side (the founding document's version never uses it), but the
//! peer may open it: the newest original's first stream is id 0 (docs/PROTOCOL.md 10).

use std::collections::VecDeque;

/// Which way the allocator scans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Upward from 1 (the client side).
    Up,
    /// Downward from 65,535 (the server side).
    Down,
}

/// How many releases an id rests for before it may be handed out again. At the original's churn
/// rate (a few thousand streams a second) that is seconds; against a fast peer, tens of
/// milliseconds at least, far longer than the microseconds by which the original's late frames
/// follow its FIN answer.
pub(crate) const REST: usize = 8192;

const WORDS: usize = 65_536 / 64;

/// A set of ids as a bitmap.
#[derive(Debug)]
struct Bits(Box<[u64; WORDS]>);

impl Bits {
    fn new() -> Bits {
        Bits(Box::new([0u64; WORDS]))
    }
    fn get(&self, id: u16) -> bool {
        self.0[id as usize / 64] & (1 << (id % 64)) != 0
    }
    fn set(&mut self, id: u16) {
        self.0[id as usize / 64] |= 1 << (id % 64);
    }
    fn clear(&mut self, id: u16) {
        self.0[id as usize / 64] &= !(1 << (id % 64));
    }
}

/// The set of ids in use and resting, with where the next first-fit scan starts.
#[derive(Debug)]
pub(crate) struct Ids {
    used: Bits,
    /// Released and not yet free again (an id may also be in use again, if the peer opened it).
    resting: Bits,
    /// The resting ids, oldest first; each at most once.
    rest_queue: VecDeque<u16>,
    /// Ids in use, 0 included.
    in_use: usize,
    /// No id is free before this one in the scan direction: where the next scan starts.
    hint: u16,
    dir: Direction,
}

impl Ids {
    pub(crate) fn new(dir: Direction) -> Ids {
        Ids {
            used: Bits::new(),
            resting: Bits::new(),
            rest_queue: VecDeque::new(),
            in_use: 0,
            hint: match dir {
                Direction::Up => 1,
                Direction::Down => u16::MAX,
            },
            dir,
        }
    }

    /// Number of ids in use (id 0 counted when the peer uses it).
    pub(crate) fn in_use(&self) -> usize {
        self.in_use
    }

    /// How many more ids this side could allocate now (resting ones included): 0 when all of
    /// 1..=65,535 are in use.
    pub(crate) fn allocatable(&self) -> usize {
        65_535 - (self.in_use - usize::from(self.used.get(0)))
    }

    /// Marks `id` in use (the peer opened it, id 0 included); returns false if it already was.
    pub(crate) fn insert(&mut self, id: u16) -> bool {
        if self.used.get(id) {
            return false;
        }
        self.used.set(id);
        self.in_use += 1;
        true
    }

    /// Releases `id`: it rests before it may be allocated again. Returns false if it was not in
    /// use.
    pub(crate) fn remove(&mut self, id: u16) -> bool {
        if !self.used.get(id) {
            return false;
        }
        self.used.clear(id);
        self.in_use -= 1;
        if id == 0 {
            return true; // never allocated by this side: nothing to rest
        }
        if !self.resting.get(id) {
            self.resting.set(id);
            self.rest_queue.push_back(id);
        }
        if self.rest_queue.len() > REST {
            self.wake_oldest();
        }
        true
    }

    /// Ends the rest of the oldest resting id; returns it.
    fn wake_oldest(&mut self) -> Option<u16> {
        let id = self.rest_queue.pop_front()?;
        self.resting.clear(id);
        if !self.used.get(id) && self.before_hint(id) {
            self.hint = id;
        }
        Some(id)
    }

    fn before_hint(&self, id: u16) -> bool {
        match self.dir {
            Direction::Up => id < self.hint,
            Direction::Down => id > self.hint,
        }
    }

    /// Allocates the first free id from this side's end (never 0), preferring ids that are not
    /// resting; `None` when all of 1..=65,535 are in use.
    pub(crate) fn allocate(&mut self) -> Option<u16> {
        if self.allocatable() == 0 {
            return None;
        }
        let id = loop {
            let found = match self.dir {
                Direction::Up => self.scan_up(self.hint),
                Direction::Down => self.scan_down(self.hint),
            };
            if let Some(id) = found {
                break id;
            }
            // Every free id is resting: the oldest one goes first.
            let id = self.wake_oldest().expect("a free id exists, so one rests");
            if !self.used.get(id) {
                break id;
            }
        };
        self.insert(id);
        self.hint = id;
        Some(id)
    }

    /// Bits of word `w` that a scan must skip: in use, resting, and id 0.
    fn taken(&self, w: usize) -> u64 {
        self.used.0[w] | self.resting.0[w] | u64::from(w == 0)
    }

    /// The first free, non-resting id at or above `from`.
    fn scan_up(&self, from: u16) -> Option<u16> {
        let mut w = from as usize / 64;
        let mut word = self.taken(w) | ((1u64 << (from % 64)) - 1);
        loop {
            if word != u64::MAX {
                return Some((w * 64 + word.trailing_ones() as usize) as u16);
            }
            w += 1;
            if w == WORDS {
                return None;
            }
            word = self.taken(w);
        }
    }

    /// The first free, non-resting id at or below `from`.
    fn scan_down(&self, from: u16) -> Option<u16> {
        let mut w = from as usize / 64;
        let shift = from % 64;
        // Treat the bits above `from` in its word as taken.
        let above = if shift == 63 {
            0
        } else {
            u64::MAX << (shift + 1)
        };
        let mut word = self.taken(w) | above;
        loop {
            if word != u64::MAX {
                return Some((w * 64 + 63 - word.leading_ones() as usize) as u16);
            }
            if w == 0 {
                return None;
            }
            w -= 1;
            word = self.taken(w);
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
        // Id 2 rests: the next open takes the lowest id that is neither in use nor resting.
        assert_eq!(ids.allocate(), Some(4));
        assert_eq!(ids.in_use(), 3);
    }

    #[test]
    fn a_released_id_rests_for_rest_releases() {
        let mut ids = Ids::new(Direction::Up);
        let first = ids.allocate().unwrap();
        assert!(ids.remove(first));
        // One stream at a time, as a churning client opens them: the released id is not handed
        // out again until REST other ids have been released after it.
        let mut seen = vec![first];
        for _ in 0..REST {
            let id = ids.allocate().unwrap();
            assert_ne!(id, first, "a resting id was handed out");
            seen.push(id);
            assert!(ids.remove(id));
        }
        assert_eq!(
            ids.allocate(),
            Some(first),
            "rested long enough: lowest again"
        );
        // The ids stay at this side's end: REST + 1 of them, the lowest.
        assert!(seen.iter().all(|&id| (id as usize) <= REST + 1));
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
        let band = REST + 101;
        assert!(open
            .iter()
            .all(|&id| (id as usize) <= band || (id as usize) >= 65_535 - band));
    }

    #[test]
    fn server_allocates_downward_from_max() {
        let mut ids = Ids::new(Direction::Down);
        assert_eq!(ids.allocate(), Some(65_535));
        assert_eq!(ids.allocate(), Some(65_534));
        assert!(ids.insert(65_533));
        assert_eq!(ids.allocate(), Some(65_532));
        assert!(ids.remove(65_534));
        assert_eq!(ids.allocate(), Some(65_531), "65,534 rests");
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
            assert_eq!(ids.allocatable(), 0);
            // The only free id rests, and is handed out anyway rather than fail.
            assert!(ids.remove(777));
            assert_eq!(ids.allocate(), Some(777));
            assert_eq!(ids.allocate(), None);
        }
    }

    #[test]
    fn with_every_free_id_resting_the_oldest_goes_first() {
        let mut ids = Ids::new(Direction::Up);
        for _ in 0..65_535 {
            ids.allocate().unwrap();
        }
        for id in [500u16, 20, 9_000] {
            assert!(ids.remove(id));
        }
        assert_eq!(ids.allocate(), Some(500));
        assert_eq!(ids.allocate(), Some(20));
        assert_eq!(ids.allocate(), Some(9_000));
        assert_eq!(ids.allocate(), None);
    }

    #[test]
    fn the_peer_may_use_id_zero_and_resting_ids() {
        let mut ids = Ids::new(Direction::Up);
        assert!(ids.insert(0), "the newest original's first stream");
        assert!(!ids.insert(0));
        assert_eq!(ids.allocate(), Some(1));
        assert_eq!(ids.in_use(), 2);
        assert!(ids.remove(1));
        assert!(
            ids.insert(1),
            "the peer may open an id that rests on this side"
        );
        assert!(ids.remove(1));
        assert!(ids.remove(0));
        assert!(!ids.remove(0));
        assert_eq!(ids.in_use(), 0);
        // With the peer holding 0, this side can still allocate all of 1..=65,535.
        assert!(ids.insert(0));
        assert_eq!(ids.allocatable(), 65_535);
        for _ in 0..65_535 {
            assert_ne!(ids.allocate(), Some(0));
        }
        assert_eq!(ids.allocate(), None);
        assert_eq!(ids.in_use(), 65_536);
    }

    #[test]
    fn recycles_without_ever_handing_out_zero() {
        for dir in [Direction::Up, Direction::Down] {
            let mut ids = Ids::new(dir);
            for _ in 0..200_000 {
                let id = ids.allocate().unwrap();
                assert_ne!(id, 0);
                assert!(ids.remove(id));
            }
            assert_eq!(ids.in_use(), 0);
            assert!(ids.rest_queue.len() <= REST);
        }
    }
}
