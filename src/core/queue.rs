//! Lists of streams that own their "listed" flags (h2's `store::Queue`): the streams waiting for
//! a confirm, for room in the output queue, for a flush; and counted sets: the writers contending
//! for room, the streams holding more than their window unread (xtaci's v1, which has no flow
//! control). A stream is in a list or set at most once, and its flag says so; only this module
//! reads or sets the flags, so a list and its flags cannot drift apart.

use std::collections::VecDeque;
use std::marker::PhantomData;

use super::slots::{Slots, StreamKey};
use super::stream_state::StreamState;

/// A stream's memberships; each flag belongs to one list (or, `contending`, to a [`Counted`] count).
#[derive(Debug, Default, Clone, Copy)]
pub struct Listings {
    confirm: bool,
    room: bool,
    flush: bool,
    contending: bool,
    over: bool,
}

impl Listings {
    /// Waits for room in the output queue and has not written since: other writers yield to it.
    pub fn contending(&self) -> bool {
        self.contending
    }

    /// Listed as waiting for room in the output queue.
    pub fn waits_for_room(&self) -> bool {
        self.room
    }
}

/// Which flag a list owns.
pub(crate) trait Flag {
    fn flag(l: &mut Listings) -> &mut bool;
}

/// Streams with data read and not yet confirmed.
#[derive(Debug)]
pub(crate) enum Confirm {}
/// Streams waiting for room in the output queue.
#[derive(Debug)]
pub(crate) enum Room {}
/// Streams waiting for their data to be flushed.
#[derive(Debug)]
pub(crate) enum Flush {}
/// Writers waiting for room that have not written since.
#[derive(Debug)]
pub(crate) enum Contend {}
/// Streams holding more than their window unread.
#[derive(Debug)]
pub(crate) enum Over {}

impl Flag for Contend {
    fn flag(l: &mut Listings) -> &mut bool {
        &mut l.contending
    }
}
impl Flag for Over {
    fn flag(l: &mut Listings) -> &mut bool {
        &mut l.over
    }
}

impl Flag for Confirm {
    fn flag(l: &mut Listings) -> &mut bool {
        &mut l.confirm
    }
}
impl Flag for Room {
    fn flag(l: &mut Listings) -> &mut bool {
        &mut l.room
    }
}
impl Flag for Flush {
    fn flag(l: &mut Listings) -> &mut bool {
        &mut l.flush
    }
}

/// A list of streams, in the order they were listed, each at most once.
#[derive(Debug)]
pub(crate) struct Listed<F> {
    keys: VecDeque<StreamKey>,
    flag: PhantomData<F>,
}

impl<F> Default for Listed<F> {
    fn default() -> Self {
        Listed {
            keys: VecDeque::new(),
            flag: PhantomData,
        }
    }
}

impl<F: Flag> Listed<F> {
    /// Lists the stream unless it is listed already.
    pub(crate) fn push<W>(&mut self, key: StreamKey, s: &mut StreamState<W>) {
        let flag = F::flag(&mut s.listed);
        if !*flag {
            *flag = true;
            self.keys.push_back(key);
        }
    }

    /// The oldest stream listed that is still alive, taken off the list.
    pub(crate) fn pop<W>(&mut self, streams: &mut Slots<StreamState<W>>) -> Option<StreamKey> {
        while let Some(key) = self.keys.pop_front() {
            if let Some(s) = streams.get_mut(key) {
                *F::flag(&mut s.listed) = false;
                return Some(key);
            }
        }
        None
    }

    /// Takes off the list every stream for which `done` says true (and every forgotten one).
    pub(crate) fn take_done<W>(
        &mut self,
        streams: &mut Slots<StreamState<W>>,
        mut done: impl FnMut(StreamKey, &mut StreamState<W>) -> bool,
    ) {
        self.keys.retain(|&k| {
            let Some(s) = streams.get_mut(k) else {
                return false;
            };
            if done(k, s) {
                *F::flag(&mut s.listed) = false;
                return false;
            }
            true
        });
    }

    /// Whether no stream is listed (forgotten ones may still count until popped).
    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Checks that the live streams listed are exactly those whose flag is set, each once.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn check<W>(
        &self,
        streams: &Slots<StreamState<W>>,
        what: &str,
    ) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for &k in &self.keys {
            if let Some(s) = streams.get(k) {
                let mut l = s.listed;
                if !*F::flag(&mut l) {
                    return Err(format!("stream {} in the {what} list, unflagged", s.id));
                }
                if !seen.insert(k) {
                    return Err(format!("stream {} twice in the {what} list", s.id));
                }
            }
        }
        for k in streams.keys() {
            let s = streams.get(k).expect("listed by keys()");
            let mut l = s.listed;
            if *F::flag(&mut l) && !seen.contains(&k) {
                return Err(format!(
                    "stream {} flagged for the {what} list, not in it",
                    s.id
                ));
            }
        }
        Ok(())
    }
}

/// A counted set of streams (its members' flags say who): the writers contending for room
/// (while any other contends, a stream takes at most a frame's worth of each output batch), or
/// the streams holding more than their window.
#[derive(Debug)]
pub(crate) struct Counted<F> {
    count: usize,
    flag: PhantomData<F>,
}

impl<F> Default for Counted<F> {
    fn default() -> Self {
        Counted {
            count: 0,
            flag: PhantomData,
        }
    }
}

impl<F: Flag> Counted<F> {
    /// The stream joins the set.
    pub(crate) fn join(&mut self, l: &mut Listings) {
        let flag = F::flag(l);
        if !*flag {
            *flag = true;
            self.count += 1;
        }
    }

    /// The stream leaves the set; returns whether it was in it.
    pub(crate) fn leave(&mut self, l: &mut Listings) -> bool {
        let was = std::mem::take(F::flag(l));
        if was {
            self.count -= 1;
        }
        was
    }

    /// Whether members other than the stream with listings `l` are in the set.
    pub(crate) fn others_than(&self, l: &Listings) -> bool {
        let mut l = *l;
        self.count > usize::from(*F::flag(&mut l))
    }

    /// How many are in the set.
    pub(crate) fn count(&self) -> usize {
        self.count
    }
}
