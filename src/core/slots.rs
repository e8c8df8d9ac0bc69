//! A slab with generations: a handle's key stays tied to its own stream even after the slot is
//! reused, so a stale handle can never act on a newer stream.

/// Names one stream for its whole life; never reused for another stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct StreamKey {
    index: u32,
    generation: u32,
}

#[derive(Debug)]
struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// Values addressed by [`StreamKey`].
#[derive(Debug)]
pub(crate) struct Slots<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
    /// Every removal takes a fresh generation, so keys stay unique even when the slab is emptied
    /// and its memory given back.
    next_generation: u32,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots {
            slots: Vec::new(),
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
            let slot = &mut self.slots[index as usize];
            slot.value = Some(value);
            return StreamKey {
                index,
                generation: slot.generation,
            };
        }
        let index = self.slots.len() as u32;
        let generation = self.fresh_generation();
        self.slots.push(Slot {
            generation,
            value: Some(value),
        });
        StreamKey { index, generation }
    }

    pub(crate) fn get(&self, key: StreamKey) -> Option<&T> {
        let slot = self.slots.get(key.index as usize)?;
        if slot.generation != key.generation {
            return None;
        }
        slot.value.as_ref()
    }

    pub(crate) fn get_mut(&mut self, key: StreamKey) -> Option<&mut T> {
        let slot = self.slots.get_mut(key.index as usize)?;
        if slot.generation != key.generation {
            return None;
        }
        slot.value.as_mut()
    }

    pub(crate) fn remove(&mut self, key: StreamKey) -> Option<T> {
        let slot = self.slots.get_mut(key.index as usize)?;
        if slot.generation != key.generation {
            return None;
        }
        let value = slot.value.take()?;
        let generation = self.fresh_generation();
        self.slots[key.index as usize].generation = generation;
        self.free.push(key.index);
        self.len -= 1;
        if self.len == 0 {
            // All gone: give the memory back; generations keep counting, so old keys stay dead.
            self.slots = Vec::new();
            self.free = Vec::new();
        }
        Some(value)
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn fresh_generation(&mut self) -> u32 {
        let generation = self.next_generation;
        self.next_generation = generation.wrapping_add(1);
        generation
    }

    pub(crate) fn keys(&self) -> Vec<StreamKey> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.value.is_some())
            .map(|(i, s)| StreamKey {
                index: i as u32,
                generation: s.generation,
            })
            .collect()
    }
}
