//! [`Reserved`]: a list whose room is allocated once, when it is made, and never grown.
//!
//! The service's big tables (a row per service it can watch, 256 of them) used to be
//! `heapless::Vec`s inside the `Service` box, and moving that struct into its box wrote every
//! byte of every table: all of it resident from the start (160 kB), whatever the number of
//! services. A `Reserved` list allocates its room at start-up like any other buffer, but a page
//! of that room becomes resident only when an item is written to it, so the resident memory
//! follows the services in use (`docs/perf.md`, the daemon's memory). Like a `heapless::Vec`, it
//! refuses an item past its capacity instead of growing: after start-up it never allocates
//! (`tests/no_alloc.rs`).

use core::ops::{Deref, DerefMut};

/// A list with room for exactly `capacity` items, allocated when it is made.
#[derive(Debug)]
pub(crate) struct Reserved<T> {
    items: Vec<T>,
    capacity: usize,
}

impl<T> Reserved<T> {
    /// An empty list with room for `capacity` items. Allocates that room now (untouched).
    #[must_use]
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Reserved {
            items: Vec::with_capacity(capacity),
            capacity,
        }
    }

    /// Appends `item`, or gives it back when the list is full. Never allocates.
    pub(crate) fn push(&mut self, item: T) -> Result<(), T> {
        // `Vec::with_capacity` reserved at least `capacity`; a push below it never grows.
        if self.items.len() >= self.capacity {
            return Err(item);
        }
        self.items.push(item);
        Ok(())
    }

    /// Takes the last item.
    pub(crate) fn pop(&mut self) -> Option<T> {
        self.items.pop()
    }

    /// Keeps only the items for which `keep` says so, in order.
    pub(crate) fn retain_mut(&mut self, keep: impl FnMut(&mut T) -> bool) {
        self.items.retain_mut(keep);
    }
}

impl<T: Clone> Clone for Reserved<T> {
    /// A copy with room for as many items as the original, allocated now.
    fn clone(&self) -> Self {
        let mut copy = Reserved::with_capacity(self.capacity);
        copy.items.extend_from_slice(&self.items);
        copy
    }
}

impl<T> Deref for Reserved<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.items
    }
}

impl<T> DerefMut for Reserved<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_refuses_past_its_capacity_and_never_moves_its_room() {
        let mut list = Reserved::with_capacity(3);
        let room = list.items.as_ptr();
        for i in 0..3 {
            assert_eq!(list.push(i), Ok(()));
        }
        assert_eq!(list.push(3), Err(3));
        assert_eq!(&*list, &[0, 1, 2]);
        list.retain_mut(|x| *x != 0);
        assert_eq!(&*list, &[1, 2]);
        assert_eq!(list.pop(), Some(2));
        assert_eq!(list.pop(), Some(1));
        assert_eq!(list.pop(), None);
        for i in 0..3 {
            assert_eq!(list.push(i), Ok(()));
        }
        assert_eq!(list.push(3), Err(3));
        let copy = list.clone();
        assert_eq!((&*copy, copy.capacity), (&[0, 1, 2][..], 3));
        assert_eq!(
            list.items.as_ptr(),
            room,
            "the room is the one allocated at first"
        );
    }
}
