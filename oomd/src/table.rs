//! The subject table: rows sorted by subject id, a hash index for the frame path, and the
//! limits overrides a few subjects have.

use memstat::SubjectId;

use crate::subject::Subject;
use crate::{bounds, Limits, Policy, PolicyError};

/// At most `S` subjects. Rows are kept sorted by id (the order status listings and the
/// tie-break of the decision order use); a hash index finds a frame's sender in O(1)
/// expected, whatever the size. Nothing iterates in hash order, so hashing cannot make a
/// decision depend on it.
#[derive(Clone, Debug)]
pub(crate) struct SubjectTable<const S: usize> {
    /// Ids of the rows `..len`, sorted; `rows[i]` is the row of `ids[i]`. Kept apart from the
    /// rows so that the lookup of a frame's sender searches a dense array.
    ids: [SubjectId; S],
    rows: [Subject; S],
    len: usize,
    /// Hash index over `ids[..len]`: `heads[bucket]` is the first row of a bucket, `chain[row]`
    /// the next row in the same bucket, [`NO_ROW`] ends a chain.
    heads: [u16; S],
    chain: [u16; S],
    /// Per-subject limits, indexed by `Subject::override_slot`.
    overrides: [Option<Limits>; bounds::MAX_OVERRIDES],
}

/// Ends a chain of the hash index; never a row (rows are below `S < u16::MAX`).
const NO_ROW: u16 = u16::MAX;

impl<const S: usize> SubjectTable<S> {
    const CAPACITY_OK: () = assert!(
        S > 0 && S < u16::MAX as usize,
        "subject capacity must be in 1..65535"
    );

    pub(crate) fn new() -> Self {
        let () = Self::CAPACITY_OK;
        SubjectTable {
            ids: [SubjectId(0); S],
            rows: [Subject::VACANT; S],
            len: 0,
            heads: [NO_ROW; S],
            chain: [NO_ROW; S],
            overrides: [None; bounds::MAX_OVERRIDES],
        }
    }

    /// Rows in use.
    pub(crate) const fn len(&self) -> usize {
        self.len
    }

    pub(crate) const fn is_full(&self) -> bool {
        self.len == S
    }

    /// The id of row `i`.
    pub(crate) fn id(&self, i: usize) -> SubjectId {
        self.ids[i]
    }

    pub(crate) fn row(&self, i: usize) -> &Subject {
        &self.rows[i]
    }

    pub(crate) fn row_mut(&mut self, i: usize) -> &mut Subject {
        &mut self.rows[i]
    }

    /// The rows in use, in id order.
    pub(crate) fn rows(&self) -> &[Subject] {
        &self.rows[..self.len]
    }

    /// The row of `id`, through the hash index.
    #[inline]
    pub(crate) fn find(&self, id: SubjectId) -> Option<usize> {
        let mut row = self.heads[bucket::<S>(id)];
        while row != NO_ROW {
            let i = usize::from(row);
            if self.ids[i] == id {
                return Some(i);
            }
            row = self.chain[i];
        }
        None
    }

    /// Where `id`'s row is, or where it would be inserted.
    pub(crate) fn position(&self, id: SubjectId) -> Result<usize, usize> {
        self.ids[..self.len].binary_search(&id)
    }

    /// Inserts `row` for `id` at `at` (from [`position`](Self::position)); the table must not
    /// be full.
    pub(crate) fn insert(&mut self, at: usize, id: SubjectId, row: Subject) {
        debug_assert!(!self.is_full());
        self.ids.copy_within(at..self.len, at + 1);
        self.rows.copy_within(at..self.len, at + 1);
        self.ids[at] = id;
        self.rows[at] = row;
        self.len += 1;
        self.rebuild_index();
    }

    /// Removes row `at`, and its override.
    pub(crate) fn remove(&mut self, at: usize) {
        self.release_override(at);
        self.ids.copy_within(at + 1..self.len, at);
        self.rows.copy_within(at + 1..self.len, at);
        self.len -= 1;
        self.ids[self.len] = SubjectId(0);
        self.rows[self.len] = Subject::VACANT;
        self.rebuild_index();
    }

    /// The limits in force for row `i`: its override, or the global ones.
    #[inline]
    pub(crate) fn limits<'a>(&'a self, i: usize, policy: &'a Policy) -> &'a Limits {
        match self.overrides.get(usize::from(self.rows[i].override_slot)) {
            Some(Some(limits)) => limits,
            _ => &policy.limits,
        }
    }

    /// The lowest hard limit among the overrides held, if any.
    pub(crate) fn lowest_override_hard(&self) -> Option<u64> {
        self.overrides.iter().flatten().map(|l| l.hard_bytes).min()
    }

    pub(crate) fn has_override(&self, i: usize) -> bool {
        self.rows[i].override_slot != Subject::NO_OVERRIDE
    }

    /// Sets or clears row `i`'s override, taking or freeing a slot of the override table.
    pub(crate) fn set_override(
        &mut self,
        i: usize,
        limits: Option<Limits>,
    ) -> Result<(), PolicyError> {
        let Some(limits) = limits else {
            self.release_override(i);
            return Ok(());
        };
        let slot = match self.rows[i].override_slot {
            Subject::NO_OVERRIDE => self
                .overrides
                .iter()
                .position(Option::is_none)
                .ok_or(PolicyError::TooManyOverrides)?,
            slot => usize::from(slot),
        };
        self.overrides[slot] = Some(limits);
        self.rows[i].override_slot = slot as u8; // slot < MAX_OVERRIDES < NO_OVERRIDE
        Ok(())
    }

    fn release_override(&mut self, i: usize) {
        let slot = core::mem::replace(&mut self.rows[i].override_slot, Subject::NO_OVERRIDE);
        if let Some(o) = self.overrides.get_mut(usize::from(slot)) {
            *o = None;
        }
    }

    /// Recomputes the hash index after rows moved. O(len); only registration and removal
    /// move rows.
    fn rebuild_index(&mut self) {
        self.heads = [NO_ROW; S];
        for i in (0..self.len).rev() {
            let b = bucket::<S>(self.ids[i]);
            self.chain[i] = self.heads[b];
            self.heads[b] = i as u16; // i < S < u16::MAX (CAPACITY_OK)
        }
    }
}

/// The bucket of `id` among `S`: Fibonacci hashing (so that ids that are not already
/// well-mixed hashes, such as small integers, still spread), then a multiply-shift range
/// reduction (no division).
fn bucket<const S: usize>(id: SubjectId) -> usize {
    let mixed = id.0.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32;
    ((mixed * S as u64) >> 32) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SubjectClass, Tick};

    fn row() -> Subject {
        Subject::new(SubjectClass::Standard, false, true, Tick::ZERO)
    }

    fn add<const S: usize>(t: &mut SubjectTable<S>, id: u64) {
        let at = t.position(SubjectId(id)).expect_err("new");
        t.insert(at, SubjectId(id), row());
    }

    #[test]
    fn rows_stay_sorted_and_the_index_finds_every_one() {
        let mut t = SubjectTable::<8>::new();
        // Small integers collide in a naive hash; Fibonacci hashing spreads them.
        for id in [5, 1, 7, 3, 2, 8, 6, 4] {
            add(&mut t, id);
        }
        assert!(t.is_full());
        let ids: [u64; 8] = core::array::from_fn(|i| t.id(i).0);
        assert_eq!(ids, [1, 2, 3, 4, 5, 6, 7, 8]);
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(t.find(SubjectId(*id)), Some(i));
        }
        assert_eq!(t.find(SubjectId(9)), None);
        t.remove(t.find(SubjectId(4)).unwrap());
        assert_eq!(t.len(), 7);
        assert_eq!(t.find(SubjectId(4)), None);
        assert_eq!(t.find(SubjectId(8)), Some(6));
    }

    #[test]
    fn overrides_are_slots_freed_on_removal() {
        let policy = Policy::default();
        let mut t = SubjectTable::<64>::new();
        let mut own = policy.limits;
        own.hard_bytes += 1;
        for id in 0..bounds::MAX_OVERRIDES as u64 + 1 {
            add(&mut t, id);
        }
        for i in 0..bounds::MAX_OVERRIDES {
            t.set_override(i, Some(own)).unwrap();
        }
        let last = bounds::MAX_OVERRIDES;
        assert_eq!(
            t.set_override(last, Some(own)),
            Err(PolicyError::TooManyOverrides)
        );
        assert_eq!(*t.limits(0, &policy), own);
        assert_eq!(*t.limits(last, &policy), policy.limits);
        t.remove(0);
        // Row `last` moved down to `last - 1`; the freed slot is its for the taking.
        t.set_override(last - 1, Some(own)).unwrap();
        assert!(t.has_override(last - 1));
    }
}
