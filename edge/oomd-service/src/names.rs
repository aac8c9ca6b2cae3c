//! Service names by subject id, in a fixed table.

use core::fmt::Write as _;
use memstat::SubjectId;

use oomd::trace::SubjectNames as _;
use oomd_proto::{KillReport, KillReportView, Name};

use crate::reserved::Reserved;

/// Up to `oomd::bounds::DEFAULT_SUBJECTS` names; lookups are linear (registration-time sized,
/// rare on the hot path).
#[derive(Debug, Clone)]
pub struct ServiceNames {
    entries: Reserved<(SubjectId, Name)>,
}

impl Default for ServiceNames {
    fn default() -> Self {
        ServiceNames {
            entries: Reserved::with_capacity(oomd::bounds::DEFAULT_SUBJECTS),
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

impl ServiceNames {
    /// `report` with its service's name (its id in hex if the name is not known).
    #[must_use]
    pub fn report_view(&self, report: KillReport) -> KillReportView {
        let mut app = Name::new();
        match self.name(report.subject) {
            Some(name) => app.push_str(name).unwrap_or(()),
            None => {
                let _ = write!(app, "{}", report.subject);
            }
        }
        KillReportView { report, app }
    }
}
