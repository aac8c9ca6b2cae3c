//! Service names by subject id, in a fixed table.

use memstat::SubjectId;
use oomd_proto::Name;

/// Up to `N` names; lookups are linear (registration-time sized, rare on the hot path).
#[derive(Debug, Clone)]
pub struct ServiceNames {
    entries: heapless::Vec<(SubjectId, Name), { oomd::bounds::DEFAULT_SUBJECTS }>,
}

impl Default for ServiceNames {
    fn default() -> Self {
        ServiceNames {
            entries: heapless::Vec::new(),
        }
    }
}

impl ServiceNames {
    /// Remembers `name` for `id`; false when the table is full.
    pub fn insert(&mut self, id: SubjectId, name: &Name) -> bool {
        if let Some(entry) = self.entries.iter_mut().find(|(i, _)| *i == id) {
            entry.1.clone_from(name);
            return true;
        }
        self.entries.push((id, name.clone())).is_ok()
    }

    /// The id of the service called `name`.
    #[must_use]
    pub fn id_of(&self, name: &str) -> Option<SubjectId> {
        self.entries
            .iter()
            .find(|(_, n)| n.as_str() == name)
            .map(|(i, _)| *i)
    }
}

impl oomd::trace::SubjectNames for ServiceNames {
    fn name(&self, id: SubjectId) -> Option<&str> {
        self.entries
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, n)| n.as_str())
    }
}
