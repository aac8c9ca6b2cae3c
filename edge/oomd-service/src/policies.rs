//! Per-service limits by name, kept whether or not the service runs, and the check that makes
//! a policy document all or nothing.
//!
//! The core holds the limits of *registered* subjects only. This table holds every service's
//! own limits the operator gave (in the policy file at start-up, or with `oomctl policy set`),
//! by manifest name: a service that is not running yet gets its limits when it starts, on
//! both paths alike. The table is bounded by the core's override table, so every running
//! service in it always finds a slot there.

use memstat::SubjectId;
use oomd::{bounds::MAX_OVERRIDES, Limits, PolicyError};
use oomd_proto::{Name, PolicyDocument, ServiceLimits};

/// Why a policy document was refused: the table at fault (`None`: `[policy]`) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The service whose table is at fault, or `None` for the global `[policy]` table.
    pub service: Option<Name>,
    /// What is wrong, with its key.
    pub error: PolicyError,
}

impl core::fmt::Display for Refusal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        oomd_proto::write_policy_fault(f, self.service.as_deref(), self.error)
    }
}

/// Checks a policy document as oomd does at start-up and on `oomctl policy set`, changing
/// nothing: `Ok` means oomd would start with it (`oomd --check-config`).
pub fn check_document(doc: &PolicyDocument) -> Result<(), Refusal> {
    ServiceLimitsTable::default().check(doc)
}

/// Every service's own limits, by name.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServiceLimitsTable {
    entries: heapless::Vec<(SubjectId, Name, Limits), MAX_OVERRIDES>,
}

impl ServiceLimitsTable {
    /// The limits of `id`, if it has its own.
    pub(crate) fn get(&self, id: SubjectId) -> Option<Limits> {
        self.entries
            .iter()
            .find(|(i, _, _)| *i == id)
            .map(|(_, _, l)| *l)
    }

    /// Every entry, in the order they were first set.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Name, &Limits)> {
        self.entries.iter().map(|(_, n, l)| (n, l))
    }

    /// Checks the whole document against the rules and this table's room, changing nothing.
    /// When it passes, [`apply`](Self::apply) cannot fail, and the core accepts every piece
    /// (its checks are the same `validate` calls, and its override table is at least as
    /// large as this one).
    pub(crate) fn check(&self, doc: &PolicyDocument) -> Result<(), Refusal> {
        if let Some(policy) = &doc.global {
            policy.validate().map_err(|error| Refusal {
                service: None,
                error,
            })?;
        }
        let mut size = self.entries.len();
        for (k, entry) in doc.services.iter().enumerate() {
            let refuse = |error| Refusal {
                service: Some(entry.name.clone()),
                error,
            };
            let id = SubjectId::from_name(&entry.name);
            let earlier = |e: &&ServiceLimits| SubjectId::from_name(&e.name) == id;
            let seen = self.get(id).is_some() || doc.services[..k].iter().any(|e| earlier(&e));
            // Clearing frees a slot only once the whole document is applied; counting it as
            // free now could let a later entry take a slot the check then lacks.
            if let Some(limits) = &entry.limits {
                limits.validate().map_err(refuse)?;
                if !seen {
                    size += 1;
                    if size > MAX_OVERRIDES {
                        return Err(refuse(PolicyError::TooManyOverrides));
                    }
                }
            }
        }
        Ok(())
    }

    /// Applies the per-service part of a document that passed [`check`](Self::check).
    pub(crate) fn apply(&mut self, doc: &PolicyDocument) {
        for entry in &doc.services {
            // Cannot fail after a successful check.
            let _ = self.set(&entry.name, entry.limits);
        }
    }

    /// Sets (`Some`) or clears (`None`) the limits of the service `name`.
    pub(crate) fn set(&mut self, name: &Name, limits: Option<Limits>) -> Result<(), PolicyError> {
        let id = SubjectId::from_name(name);
        let at = self.entries.iter().position(|(i, _, _)| *i == id);
        match (at, limits) {
            (Some(at), Some(limits)) => self.entries[at].2 = limits,
            (Some(at), None) => {
                self.entries.remove(at);
            }
            (None, Some(limits)) => {
                limits.validate()?;
                self.entries
                    .push((id, name.clone(), limits))
                    .map_err(|_| PolicyError::TooManyOverrides)?;
            }
            (None, None) => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(hard: u64) -> Limits {
        Limits {
            soft_bytes: hard / 2,
            hard_bytes: hard,
            soft_grace_ticks: 0,
            exit_deadline_ticks: 10,
        }
    }

    fn doc(entries: &[(&str, Option<Limits>)]) -> PolicyDocument {
        let mut d = PolicyDocument::default();
        for (name, l) in entries {
            d.services
                .push(ServiceLimits {
                    name: oomd_proto::name(name).unwrap(),
                    limits: *l,
                })
                .unwrap();
        }
        d
    }

    #[test]
    fn a_document_with_one_bad_table_is_refused_as_a_whole_naming_the_service() {
        let mut table = ServiceLimitsTable::default();
        let mut bad = limits(100);
        bad.hard_bytes = 0;
        let mut d = doc(&[("db", Some(limits(100))), ("web", Some(bad))]);
        d.global = Some(oomd::Policy::default());
        let refusal = table.check(&d).unwrap_err();
        assert_eq!(refusal.service.as_deref(), Some("web"));
        assert_eq!(refusal.error, PolicyError::HardZero);
        assert_eq!(
            refusal.to_string(),
            "service.web.hard_bytes: hard_bytes must be above zero"
        );
        // Nothing was applied.
        assert!(table.get(SubjectId::from_name("db")).is_none());
        table.apply(&doc(&[("db", Some(limits(100)))]));
        assert_eq!(table.get(SubjectId::from_name("db")), Some(limits(100)));
    }

    #[test]
    fn a_bad_global_policy_names_its_key() {
        let table = ServiceLimitsTable::default();
        let mut d = doc(&[]);
        d.global = Some(oomd::Policy {
            kill_budget: 0,
            ..oomd::Policy::default()
        });
        let refusal = table.check(&d).unwrap_err();
        assert_eq!(refusal.service, None);
        assert_eq!(
            refusal.to_string(),
            "policy.kill_budget: kill_budget is out of range"
        );
    }

    #[test]
    fn the_table_holds_at_most_the_cores_override_capacity() {
        let mut table = ServiceLimitsTable::default();
        let names: Vec<String> = (0..=MAX_OVERRIDES).map(|i| format!("svc-{i}")).collect();
        let full: Vec<(&str, Option<Limits>)> = names[..MAX_OVERRIDES]
            .iter()
            .map(|n| (n.as_str(), Some(limits(100))))
            .collect();
        let d = doc(&full);
        assert_eq!(table.check(&d), Ok(()));
        table.apply(&d);
        // Updating an entry takes no new slot; one more service does not fit.
        assert_eq!(table.check(&doc(&[("svc-0", Some(limits(200)))])), Ok(()));
        let refusal = table
            .check(&doc(&[(names[MAX_OVERRIDES].as_str(), Some(limits(1)))]))
            .unwrap_err();
        assert_eq!(refusal.error, PolicyError::TooManyOverrides);
        assert_eq!(
            refusal.service.as_deref(),
            Some(names[MAX_OVERRIDES].as_str())
        );
        // Clearing one makes room for the next document.
        table.apply(&doc(&[("svc-3", None)]));
        assert_eq!(
            table.check(&doc(&[(names[MAX_OVERRIDES].as_str(), Some(limits(1)))])),
            Ok(())
        );
    }
}
