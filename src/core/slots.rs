//! A slab with generations: a handle's key stays tied to its own stream even after the slot is
//! reused, so a stale handle can never act on a newer stream.

/// Names one stream for its whole life; never reused for another stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamKey {
    index: u32,
    generation: u32,
}

impl StreamKey {
    /// The slot index (for maps that point at live values; see [`Slots::key_at`]).
    pub(crate) fn index(self) -> u32 {
        self.index
    }

    /// A key for tests of the modules that only keep keys.
    #[cfg(test)]
    pub(crate) fn for_test(index: u32) -> StreamKey {
        StreamKey {
            index,
            generation: 0,
        }
    }
}

#[derive(Debug)]
struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// Slots are stored in chunks of this many that never move once full: growing copies at most the
/// first chunk's streams (that chunk starts at [`FIRST_ROOM`] slots and doubles), and never holds
/// more than one chunk of unused room.
const CHUNK: usize = 256;
/// The room of the first chunk at first, and what is kept of it when the slab empties: a session
/// that opens and closes one stream at a time would otherwise allocate a chunk (about 24 KiB) and
/// free it for every stream.
const FIRST_ROOM: usize = 8;

/// Values addressed by [`StreamKey`].
#[derive(Debug)]
pub(crate) struct Slots<T> {
    chunks: Vec<Vec<Slot<T>>>,
    free: Vec<u32>,
    len: usize,
    /// Every removal takes a fresh generation, so keys stay unique even when the slab is emptied
    /// and its memory given back.
    next_generation: u32,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots {
            chunks: Vec::new(),
            free: Vec::new(),
            len: 0,
            next_generation: 1,
        }
    }
}

impl<T> Slots<T> {
    pub(crate) fn insert(&mut self, value: T) -> StreamKey {
        self.len += 1;
        if let Some(index) = self.free.pop() {
            let slot = self.slot_mut(index).expect("free slots exist");
            slot.value = Some(value);
            return StreamKey {
                index,
                generation: slot.generation,
            };
        }
        if self.chunks.last().map_or(true, |c| c.len() == CHUNK) {
            let room = if self.chunks.is_empty() {
                FIRST_ROOM
            } else {
                CHUNK
            };
            self.chunks.push(Vec::with_capacity(room));
        }
        let index =
            ((self.chunks.len() - 1) * CHUNK + self.chunks.last().expect("pushed").len()) as u32;
        let generation = self.fresh_generation();
        self.chunks.last_mut().expect("pushed").push(Slot {
            generation,
            value: Some(value),
        });
        StreamKey { index, generation }
    }

    fn slot(&self, index: u32) -> Option<&Slot<T>> {
        let i = index as usize;
        self.chunks.get(i / CHUNK)?.get(i % CHUNK)
    }

    fn slot_mut(&mut self, index: u32) -> Option<&mut Slot<T>> {
        let i = index as usize;
        self.chunks.get_mut(i / CHUNK)?.get_mut(i % CHUNK)
    }

    /// The key of the live value at `index`.
    pub(crate) fn key_at(&self, index: u32) -> Option<StreamKey> {
        let slot = self.slot(index)?;
        slot.value.as_ref()?;
        Some(StreamKey {
            index,
            generation: slot.generation,
        })
    }

    pub(crate) fn get(&self, key: StreamKey) -> Option<&T> {
        let slot = self.slot(key.index)?;
        if slot.generation != key.generation {
            return None;
        }
        slot.value.as_ref()
    }

    pub(crate) fn get_mut(&mut self, key: StreamKey) -> Option<&mut T> {
        let slot = self.slot_mut(key.index)?;
        if slot.generation != key.generation {
            return None;
        }
        slot.value.as_mut()
    }

    pub(crate) fn remove(&mut self, key: StreamKey) -> Option<T> {
        let slot = self.slot_mut(key.index)?;
        if slot.generation != key.generation {
            return None;
        }
        let value = slot.value.take()?;
        let generation = self.fresh_generation();
        self.slot_mut(key.index).expect("just found").generation = generation;
        self.free.push(key.index);
        self.len -= 1;
        if self.len == 0 {
            // All gone: give the memory back but the first chunk's first few slots; generations
            // keep counting, so old keys stay dead.
            self.chunks.truncate(1);
            self.chunks.shrink_to_fit();
            if let Some(first) = self.chunks.first_mut() {
                first.clear();
                first.shrink_to(FIRST_ROOM);
            }
            self.free.clear();
            self.free.shrink_to(FIRST_ROOM);
        }
        Some(value)
    }

    fn fresh_generation(&mut self) -> u32 {
        let generation = self.next_generation;
        self.next_generation = generation.wrapping_add(1);
        generation
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn keys(&self) -> Vec<StreamKey> {
        self.chunks
            .iter()
            .flatten()
            .enumerate()
            .filter(|(_, s)| s.value.is_some())
            .map(|(i, s)| StreamKey {
                index: i as u32,
                generation: s.generation,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The room the slab holds, in slots.
    fn room<T>(s: &Slots<T>) -> usize {
        s.chunks.iter().map(Vec::capacity).sum()
    }

    #[test]
    fn values_keep_their_keys_across_chunks_and_emptying() {
        let mut s = Slots::default();
        let keys: Vec<_> = (0..600u32).map(|v| s.insert(v)).collect();
        assert_eq!(s.chunks.len(), 3);
        assert_eq!(room(&s), 3 * CHUNK, "the first chunk grew to a whole one");
        for (v, k) in keys.iter().enumerate() {
            assert_eq!(s.get(*k), Some(&(v as u32)));
        }
        for k in &keys {
            assert!(s.remove(*k).is_some());
        }
        assert_eq!(s.len(), 0);
        assert!(room(&s) <= FIRST_ROOM, "emptied, it keeps a few slots");
        // A stale key finds nothing, also where the same index is reused.
        let again = s.insert(7);
        assert_eq!(again.index(), keys[0].index());
        assert_eq!(s.get(keys[0]), None);
        assert!(s.remove(keys[0]).is_none());
        assert_eq!(s.get(again), Some(&7));
        assert_eq!(s.keys(), [again]);
    }

    #[test]
    fn one_value_at_a_time_does_not_grow_the_slab() {
        let mut s = Slots::default();
        let first = s.insert(0u64);
        s.remove(first);
        let kept = s.chunks.first().map(|c| c.as_ptr());
        for v in 1..1_000u64 {
            let k = s.insert(v);
            assert_eq!(s.remove(k), Some(v));
        }
        assert_eq!(
            s.chunks.first().map(|c| c.as_ptr()),
            kept,
            "the same memory"
        );
        assert!(room(&s) <= FIRST_ROOM);
    }
}
