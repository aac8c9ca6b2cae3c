//! The policy file: a `[policy]` table (the global [`Policy`]) and `[service.<name>]` tables
//! (one service's own [`Limits`]). Every key is optional and defaults from
//! `Policy::default()`; an unknown key is an error that names it. The full reference is in
//! `docs/policy.md`.
//!
//! ```
//! use oomd_config::policy::PolicyFile;
//!
//! let file = PolicyFile::parse(r#"
//!     [policy]
//!     hard_bytes = "512 MiB"
//!     [service.db]
//!     hard_bytes = "2 GiB"
//! "#).unwrap();
//! assert_eq!(file.policy.limits.hard_bytes, 512 << 20);
//! assert_eq!(file.services["db"].hard_bytes, 2 << 30);
//! assert_eq!(file.to_document().unwrap().services.len(), 1);
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use oomd::{Limits, Policy, PolicyError};
use oomd_proto::{DocumentError, PolicyDocument};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::toml_file::{load_file, parse_toml, ConfigError};

/// Longest service name, in bytes: the protocol's ([`oomd_proto::MAX_NAME_LEN`]), so a name
/// the file accepts is one the service can be told about.
pub const MAX_NAME_LEN: usize = oomd_proto::MAX_NAME_LEN;

/// A policy file, as the oomd service reads it: a `[policy]` table with the same keys as a
/// simulator scenario's (every key optional, defaults from `Policy::default()`), and one
/// `[service.<name>]` table of limits (`soft_bytes`, `hard_bytes`, `soft_grace_ticks`,
/// `exit_deadline_ticks`) per service that needs its own. Scenarios use the same
/// [`PolicyTable`], so a policy means the same in the simulator and in the service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyFile {
    /// The global policy (`Policy::default()` with the `[policy]` table's keys applied).
    pub policy: Policy,
    /// Whether the file has a `[policy]` table at all: a file of `[service.<name>]` tables
    /// only is about those services, and a tool applying it leaves the global policy alone.
    pub policy_given: bool,
    /// Limits overrides by service name, each complete (unset keys from the global limits).
    pub services: BTreeMap<String, Limits>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicyFile {
    policy: Option<PolicyTable>,
    #[serde(default)]
    service: BTreeMap<String, LimitsTable>,
}

impl PolicyFile {
    /// Parses and validates policy-file text; errors name the key at fault.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let raw: RawPolicyFile = parse_toml(text)?;
        let policy_given = raw.policy.is_some();
        let policy = raw.policy.unwrap_or_default().build()?;
        let mut services = BTreeMap::new();
        for (name, limits) in &raw.service {
            let key = format!("service.{name}");
            check_name(name, &key)?;
            services.insert(name.clone(), limits.build(policy.limits, &key)?);
        }
        Ok(PolicyFile {
            policy,
            policy_given,
            services,
        })
    }

    /// Reads, parses and validates a policy file; errors name the file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        load_file(path.as_ref(), Self::parse)
    }

    /// The file as the one document oomd applies whole ([`PolicyDocument`]): the global
    /// policy when the file has a `[policy]` table, and every `[service.<name>]` table.
    pub fn to_document(&self) -> Result<PolicyDocument, DocumentError> {
        let global = self.policy_given.then_some(self.policy);
        let services = self.services.iter().map(|(n, l)| (n.as_str(), *l));
        PolicyDocument::from_parts(global, services)
    }
}

/// A number of bytes, written as an integer or as a string with a binary unit
/// (`"64 MiB"`, `"512KiB"`, `"1 GiB"`, `"100 B"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub u64);

/// Parses `"<digits>[ ]<unit>"` with units `B`, `KiB`, `MiB`, `GiB`, `TiB` (any case), or bare
/// digits. Underscores between digits are allowed (`"1_000"`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "invalid size {text:?}: expected an integer or a string like \"64 MiB\" \
             (units: B, KiB, MiB, GiB, TiB)"
        )
    };
    let s = text.trim();
    let digits_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '_'))
        .unwrap_or(s.len());
    let (digits, unit) = s.split_at(digits_end);
    let digits: String = digits.chars().filter(|&c| c != '_').collect();
    if digits.is_empty() {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let shift = match unit.trim_start().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "kib" => 10,
        "mib" => 20,
        "gib" => 30,
        "tib" => 40,
        _ => return Err(bad()),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("size {text:?} is too large"))
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size: an integer or a string like \"64 MiB\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v)
                    .map(Size)
                    .map_err(|_| E::custom(format!("a size cannot be negative ({v})")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                parse_size(v).map(Size).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A `[policy]` table as written: each key set overrides `Policy::default()`. Shared by the
/// policy file and the simulator's scenarios.
#[derive(Clone, Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PolicyTable {
    soft_bytes: Option<Size>,
    hard_bytes: Option<Size>,
    soft_grace_ticks: Option<u64>,
    exit_deadline_ticks: Option<u64>,
    sample_period_ms: Option<u32>,
    kill_budget: Option<u16>,
    kill_window_ticks: Option<u64>,
    frame_budget_per_tick: Option<u16>,
    enforce_kernel: Option<bool>,
    underreport_margin_bytes: Option<Size>,
    observe_only: Option<bool>,
    report_stale_ticks: Option<u32>,
    enforce_kernel_when_silent: Option<bool>,
    reclaim_target_percent: Option<u64>,
    reclaim_deadline_ticks: Option<u64>,
}

/// A `[service.<name>]` table as written: each key set overrides the global limits.
#[derive(Clone, Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LimitsTable {
    soft_bytes: Option<Size>,
    hard_bytes: Option<Size>,
    soft_grace_ticks: Option<u64>,
    exit_deadline_ticks: Option<u64>,
}

fn policy_key(prefix: &str, e: PolicyError) -> ConfigError {
    ConfigError::invalid(format!("{prefix}.{}", e.key()), e.to_string())
}

impl PolicyTable {
    /// The policy: `Policy::default()` with this table's keys applied, validated; an error
    /// names the key (`policy.<key>`).
    pub fn build(&self) -> Result<Policy, ConfigError> {
        let mut p = Policy::default();
        let l = &mut p.limits;
        set(&mut l.soft_bytes, self.soft_bytes.map(|s| s.0));
        set(&mut l.hard_bytes, self.hard_bytes.map(|s| s.0));
        set(&mut l.soft_grace_ticks, self.soft_grace_ticks);
        set(&mut l.exit_deadline_ticks, self.exit_deadline_ticks);
        set(&mut p.sample_period_ms, self.sample_period_ms);
        set(&mut p.kill_budget, self.kill_budget);
        let out_of_range = |e: PolicyError| move |_| policy_key("policy", e);
        set(
            &mut p.kill_window_ticks,
            narrow(self.kill_window_ticks)
                .map_err(out_of_range(PolicyError::KillWindowOutOfRange))?,
        );
        set(&mut p.frame_budget_per_tick, self.frame_budget_per_tick);
        set(&mut p.enforce_kernel, self.enforce_kernel);
        set(
            &mut p.underreport_margin_bytes,
            self.underreport_margin_bytes.map(|s| s.0),
        );
        set(&mut p.observe_only, self.observe_only);
        set(&mut p.report_stale_ticks, self.report_stale_ticks);
        set(
            &mut p.enforce_kernel_when_silent,
            self.enforce_kernel_when_silent,
        );
        set(
            &mut p.reclaim_target_percent,
            narrow(self.reclaim_target_percent)
                .map_err(out_of_range(PolicyError::ReclaimTargetOutOfRange))?,
        );
        set(
            &mut p.reclaim_deadline_ticks,
            narrow(self.reclaim_deadline_ticks)
                .map_err(out_of_range(PolicyError::ReclaimDeadlineOutOfRange))?,
        );
        p.validate().map_err(|e| policy_key("policy", e))?;
        Ok(p)
    }
}

/// A key read as a `u64` (so that any integer parses and a huge one gets the key's own
/// range error) into its narrower field.
fn narrow<T: TryFrom<u64>>(value: Option<u64>) -> Result<Option<T>, T::Error> {
    value.map(T::try_from).transpose()
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

impl LimitsTable {
    /// `global` with this table's keys applied, validated; an error names the key
    /// (`<key>.<field>`).
    pub fn build(&self, global: Limits, key: &str) -> Result<Limits, ConfigError> {
        let mut l = global;
        set(&mut l.soft_bytes, self.soft_bytes.map(|s| s.0));
        set(&mut l.hard_bytes, self.hard_bytes.map(|s| s.0));
        set(&mut l.soft_grace_ticks, self.soft_grace_ticks);
        set(&mut l.exit_deadline_ticks, self.exit_deadline_ticks);
        l.validate().map_err(|e| policy_key(key, e))?;
        Ok(l)
    }
}

/// Refuses an empty name, one longer than [`MAX_NAME_LEN`], and one with whitespace or
/// control characters; the error names `key`.
pub fn check_name(name: &str, key: &str) -> Result<(), ConfigError> {
    if name.is_empty() {
        return Err(ConfigError::invalid(key, "must not be empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(ConfigError::invalid(
            key,
            format!("{name:?} is longer than {MAX_NAME_LEN} bytes"),
        ));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::invalid(
            key,
            format!("{name:?} contains whitespace or control characters"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reclaim_keys_are_read_and_checked() {
        let file = PolicyFile::parse(
            "[policy]\nreclaim_target_percent = 75\nreclaim_deadline_ticks = 40\n",
        )
        .expect("valid");
        assert_eq!(file.policy.reclaim_target_percent, 75);
        assert_eq!(file.policy.reclaim_deadline_ticks, 40);
        assert_eq!(
            PolicyFile::parse("")
                .expect("valid")
                .policy
                .reclaim_target_percent,
            0,
            "off by default"
        );
        for (text, key) in [
            (
                "reclaim_target_percent = 100",
                "policy.reclaim_target_percent",
            ),
            (
                "reclaim_target_percent = 300",
                "policy.reclaim_target_percent",
            ),
            (
                "reclaim_deadline_ticks = 0",
                "policy.reclaim_deadline_ticks",
            ),
            (
                "reclaim_deadline_ticks = 99999999999",
                "policy.reclaim_deadline_ticks",
            ),
            (
                "kill_window_ticks = 99999999999",
                "policy.kill_window_ticks",
            ),
        ] {
            let e = PolicyFile::parse(&format!("[policy]\n{text}\n")).expect_err(text);
            assert!(e.to_string().contains(key), "{text}: {e}");
        }
    }

    #[test]
    fn sizes_take_integers_and_binary_units() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("64 MiB"), Ok(64 << 20));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("1 GiB"), Ok(1 << 30));
        assert_eq!(parse_size(" 2 tib "), Ok(2 << 40));
        assert_eq!(parse_size("1_000 B"), Ok(1000));
        for bad in [
            "",
            "MiB",
            "12 MB",
            "1.5 GiB",
            "-1",
            "12 parsecs",
            "99999999999 TiB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }
}
