//! The service manifest: a small static TOML file, validated entirely at load.
//!
//! ```toml
//! [[service]]
//! name = "oomd"                       # required; [A-Za-z0-9._-], not starting with '.'
//! argv = ["/bin/oomd"]                # required, non-empty
//! role = "watchdog"                   # optional: "watchdog" (gets the authority channel,
//!                                     #   always critical) or "selftest" (PID 1: its exit
//!                                     #   powers the machine off); at most one of each
//! critical = true                     # default false (true for the watchdog)
//! class = "standard"                  # background | standard | foreground; default standard
//! start = true                        # start at boot (default) or only on a Spawn request
//! memstat = true                      # give it a memstat channel (default true)
//! uid = 65534                         # optional: run as this user (gid defaults to uid)
//! gid = 65534                         # optional
//! env = { RUST_LOG = "info" }         # optional, added to execd's environment
//! ```
//!
//! Every error names the entry (`service #2 ("hog")`) and the key at fault. Unknown keys are
//! errors, so a typo never silently changes what runs.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use memstat::SubjectId;
use oomd::SubjectClass;
use oomd_proto::Name;
use toml::Value;

use crate::bounds::{MAX_MANIFEST_BYTES, MAX_SERVICES, MAX_SERVICE_NAME_LEN};

/// What a service is for, beyond being a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Role {
    /// The oomd service: execd hands it the authority channel (`OOMD_AUTHORITY_FD`). Always
    /// critical.
    Watchdog,
    /// The selftest client: in PID-1 mode its exit powers the machine off.
    Selftest,
}

impl Role {
    /// The word the manifest uses.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Watchdog => "watchdog",
            Role::Selftest => "selftest",
        }
    }
}

/// One validated manifest entry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceSpec {
    /// Its name: the manifest key, the base of its identity and of its cgroup directory.
    pub name: Name,
    /// `SubjectId::from_name(name)`.
    pub subject: SubjectId,
    /// Program and arguments; `argv[0]` is looked up in `PATH` when it has no `/`.
    pub argv: Vec<String>,
    /// Never ended through the authority channel.
    pub critical: bool,
    /// Victim class, told to the oomd service.
    pub class: SubjectClass,
    /// Started at boot (`true`) or only on a Spawn request.
    pub start: bool,
    /// Watchdog, selftest, or nothing special.
    pub role: Option<Role>,
    /// Gets a memstat channel (`OOMD_MEMSTAT_FD`).
    pub memstat: bool,
    /// Run as this user, if set.
    pub uid: Option<u32>,
    /// Run as this group, if set (defaults to `uid`).
    pub gid: Option<u32>,
    /// Added to the environment, in key order.
    pub env: Vec<(String, String)>,
}

/// A validated manifest: services in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    services: Vec<ServiceSpec>,
}

/// What is wrong with one key (or entry) of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// Not a key this format knows.
    UnknownKey,
    /// A required key is absent.
    Missing,
    /// The value has the wrong TOML type.
    WrongType {
        /// What was expected.
        expected: &'static str,
    },
    /// An empty string or array where something is needed.
    Empty,
    /// A name longer than [`MAX_SERVICE_NAME_LEN`] bytes.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// A value outside what is accepted.
    Invalid {
        /// What is accepted.
        expected: &'static str,
    },
    /// The same name as an earlier entry.
    Duplicate {
        /// That entry's number (1-based).
        first: usize,
    },
    /// A second service with a role only one may have.
    SecondRole {
        /// The role.
        role: Role,
        /// The first entry with it (1-based).
        first: usize,
    },
    /// `critical = false` on the watchdog, which is always critical.
    WatchdogNotCritical,
    /// An environment variable execd sets itself.
    Reserved,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::UnknownKey => f.write_str("unknown key"),
            Problem::Missing => f.write_str("missing"),
            Problem::WrongType { expected } => write!(f, "must be {expected}"),
            Problem::Empty => f.write_str("must not be empty"),
            Problem::TooLong { len } => write!(
                f,
                "{len} bytes is longer than {MAX_SERVICE_NAME_LEN} (the cgroup directory \
                 `oomd/<name>` must fit in oomd_proto::MAX_NAME_LEN)"
            ),
            Problem::Invalid { expected } => write!(f, "must be {expected}"),
            Problem::Duplicate { first } => write!(f, "same name as service #{first}"),
            Problem::SecondRole { role, first } => write!(
                f,
                "only one service may have role \"{}\" (service #{first} has it)",
                role.as_str()
            ),
            Problem::WatchdogNotCritical => {
                f.write_str("the watchdog is always critical: remove `critical = false`")
            }
            Problem::Reserved => f.write_str("is set by execd and may not be overridden"),
        }
    }
}

/// Why a manifest was not accepted.
#[derive(Debug)]
#[non_exhaustive]
pub enum ManifestError {
    /// The file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_MANIFEST_BYTES`].
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// Not TOML.
    Syntax(String),
    /// A top-level key is wrong (only `service`, an array of tables, is known).
    TopLevel {
        /// The key.
        key: String,
        /// What is wrong.
        problem: Problem,
    },
    /// One entry is wrong.
    Entry {
        /// Its number in the file, 1-based.
        index: usize,
        /// Its name, if it has a usable one.
        name: Option<String>,
        /// The key at fault (`name` for a duplicate entry, `role` for a second watchdog).
        key: String,
        /// What is wrong.
        problem: Problem,
    },
    /// More than [`MAX_SERVICES`] entries.
    TooManyServices {
        /// How many.
        count: usize,
    },
}

impl ManifestError {
    /// The key at fault, if one is.
    #[must_use]
    pub fn key(&self) -> Option<&str> {
        match self {
            ManifestError::TopLevel { key, .. } | ManifestError::Entry { key, .. } => Some(key),
            _ => None,
        }
    }

    /// The problem, for errors about one key.
    #[must_use]
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            ManifestError::TopLevel { problem, .. } | ManifestError::Entry { problem, .. } => {
                Some(problem)
            }
            _ => None,
        }
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestError::Read { path, source } => {
                write!(f, "manifest {}: {source}", path.display())
            }
            ManifestError::TooLarge { path } => write!(
                f,
                "manifest {}: larger than {MAX_MANIFEST_BYTES} bytes",
                path.display()
            ),
            ManifestError::Syntax(e) => write!(f, "manifest: not TOML: {e}"),
            ManifestError::TopLevel { key, problem } => {
                write!(f, "manifest: top-level key `{key}`: {problem}")
            }
            ManifestError::Entry {
                index,
                name,
                key,
                problem,
            } => {
                write!(f, "manifest: service #{index}")?;
                if let Some(name) = name {
                    write!(f, " (\"{name}\")")?;
                }
                write!(f, ": key `{key}`: {problem}")
            }
            ManifestError::TooManyServices { count } => write!(
                f,
                "manifest: {count} services, more than the {MAX_SERVICES} execd supports"
            ),
        }
    }
}

impl std::error::Error for ManifestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ManifestError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

const KEYS: [&str; 10] = [
    "name", "argv", "role", "critical", "class", "start", "memstat", "uid", "gid", "env",
];

impl Manifest {
    /// Reads and validates the manifest at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ManifestError> {
        let path = path.as_ref();
        let read_err = |source| ManifestError::Read {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_err)?;
        let mut text = String::new();
        file.take(MAX_MANIFEST_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(read_err)?;
        if text.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge {
                path: path.to_path_buf(),
            });
        }
        Self::parse(&text)
    }

    /// Validates a manifest given as text.
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ManifestError::Syntax(e.message().to_owned()))?;
        let mut entries: &[Value] = &[];
        for (key, value) in &table {
            match (key.as_str(), value) {
                ("service", Value::Array(array)) => entries = array,
                ("service", _) => {
                    return Err(ManifestError::TopLevel {
                        key: key.clone(),
                        problem: Problem::WrongType {
                            expected: "an array of tables ([[service]])",
                        },
                    })
                }
                _ => {
                    return Err(ManifestError::TopLevel {
                        key: key.clone(),
                        problem: Problem::UnknownKey,
                    })
                }
            }
        }
        if entries.len() > MAX_SERVICES {
            return Err(ManifestError::TooManyServices {
                count: entries.len(),
            });
        }
        let mut services: Vec<ServiceSpec> = Vec::with_capacity(entries.len());
        for (i, value) in entries.iter().enumerate() {
            let index = i + 1;
            let spec = parse_entry(index, value)?;
            let err = |key: &str, problem| ManifestError::Entry {
                index,
                name: Some(spec.name.to_string()),
                key: key.to_owned(),
                problem,
            };
            if let Some(first) = services.iter().position(|s| s.name == spec.name) {
                return Err(err("name", Problem::Duplicate { first: first + 1 }));
            }
            if let Some(role) = spec.role {
                if let Some(first) = services.iter().position(|s| s.role == Some(role)) {
                    return Err(err(
                        "role",
                        Problem::SecondRole {
                            role,
                            first: first + 1,
                        },
                    ));
                }
            }
            services.push(spec);
        }
        Ok(Manifest { services })
    }

    /// The services, in file order.
    #[must_use]
    pub fn services(&self) -> &[ServiceSpec] {
        &self.services
    }

    /// The service called `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&ServiceSpec> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The watchdog, if the manifest has one.
    #[must_use]
    pub fn watchdog(&self) -> Option<&ServiceSpec> {
        self.services
            .iter()
            .find(|s| s.role == Some(Role::Watchdog))
    }
}

fn parse_entry(index: usize, value: &Value) -> Result<ServiceSpec, ManifestError> {
    let no_name = |key: &str, problem| ManifestError::Entry {
        index,
        name: None,
        key: key.to_owned(),
        problem,
    };
    let Value::Table(table) = value else {
        return Err(no_name(
            "service",
            Problem::WrongType {
                expected: "a table",
            },
        ));
    };
    let name = match table.get("name") {
        None => return Err(no_name("name", Problem::Missing)),
        Some(Value::String(s)) => s.as_str(),
        Some(_) => {
            return Err(no_name(
                "name",
                Problem::WrongType {
                    expected: "a string",
                },
            ))
        }
    };
    if let Some(problem) = name_problem(name) {
        return Err(ManifestError::Entry {
            index,
            name: (!name.is_empty() && name.len() <= MAX_SERVICE_NAME_LEN)
                .then(|| name.escape_default().to_string()),
            key: "name".to_owned(),
            problem,
        });
    }
    let err = |key: &str, problem| ManifestError::Entry {
        index,
        name: Some(name.to_owned()),
        key: key.to_owned(),
        problem,
    };
    if let Some(key) = table.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(err(key, Problem::UnknownKey));
    }
    let get_bool = |key: &str, default: bool| match table.get(key) {
        None => Ok(default),
        Some(Value::Boolean(b)) => Ok(*b),
        Some(_) => Err(err(
            key,
            Problem::WrongType {
                expected: "true or false",
            },
        )),
    };
    let get_id = |key: &str| match table.get(key) {
        None => Ok(None),
        Some(Value::Integer(n)) => match u32::try_from(*n) {
            Ok(id) if id != u32::MAX => Ok(Some(id)),
            _ => Err(err(
                key,
                Problem::Invalid {
                    expected: "an id from 0 to 4294967294",
                },
            )),
        },
        Some(_) => Err(err(
            key,
            Problem::WrongType {
                expected: "an integer",
            },
        )),
    };

    let argv = match table.get("argv") {
        None => return Err(err("argv", Problem::Missing)),
        Some(Value::Array(items)) => {
            let mut argv = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::String(s) if s.contains('\0') => {
                        return Err(err(
                            "argv",
                            Problem::Invalid {
                                expected: "strings without NUL bytes",
                            },
                        ))
                    }
                    Value::String(s) => argv.push(s.clone()),
                    _ => {
                        return Err(err(
                            "argv",
                            Problem::WrongType {
                                expected: "an array of strings",
                            },
                        ))
                    }
                }
            }
            argv
        }
        Some(_) => {
            return Err(err(
                "argv",
                Problem::WrongType {
                    expected: "an array of strings",
                },
            ))
        }
    };
    if argv.first().is_none_or(String::is_empty) {
        return Err(err("argv", Problem::Empty));
    }

    let role = match table.get("role") {
        None => None,
        Some(Value::String(s)) if s == "watchdog" => Some(Role::Watchdog),
        Some(Value::String(s)) if s == "selftest" => Some(Role::Selftest),
        Some(_) => {
            return Err(err(
                "role",
                Problem::Invalid {
                    expected: "\"watchdog\" or \"selftest\"",
                },
            ))
        }
    };
    let is_watchdog = role == Some(Role::Watchdog);
    let critical = get_bool("critical", is_watchdog)?;
    if is_watchdog && !critical {
        return Err(err("critical", Problem::WatchdogNotCritical));
    }
    let class = match table.get("class") {
        None => SubjectClass::Standard,
        Some(Value::String(s)) if s == "background" => SubjectClass::Background,
        Some(Value::String(s)) if s == "standard" => SubjectClass::Standard,
        Some(Value::String(s)) if s == "foreground" => SubjectClass::Foreground,
        Some(_) => {
            return Err(err(
                "class",
                Problem::Invalid {
                    expected: "\"background\", \"standard\" or \"foreground\"",
                },
            ))
        }
    };
    let start = get_bool("start", true)?;
    let memstat = get_bool("memstat", true)?;
    let uid = get_id("uid")?;
    let gid = get_id("gid")?;

    let mut env = Vec::new();
    match table.get("env") {
        None => {}
        Some(Value::Table(vars)) => {
            for (key, value) in vars {
                let at = format!("env.{key}");
                if key.is_empty() || key.contains(['=', '\0']) {
                    return Err(err(
                        &at,
                        Problem::Invalid {
                            expected: "a variable name without '=' or NUL",
                        },
                    ));
                }
                if key == memstat::ENV_FD || key == oomd_proto::ENV_AUTHORITY_FD {
                    return Err(err(&at, Problem::Reserved));
                }
                match value {
                    Value::String(v) if !v.contains('\0') => env.push((key.clone(), v.clone())),
                    _ => {
                        return Err(err(
                            &at,
                            Problem::WrongType {
                                expected: "a string without NUL bytes",
                            },
                        ))
                    }
                }
            }
        }
        Some(_) => {
            return Err(err(
                "env",
                Problem::WrongType {
                    expected: "a table of strings",
                },
            ))
        }
    }

    Ok(ServiceSpec {
        name: oomd_proto::name(name).map_err(|e| err("name", Problem::TooLong { len: e.len }))?,
        subject: SubjectId::from_name(name),
        argv,
        critical,
        class,
        start,
        role,
        memstat,
        uid,
        gid: gid.or(uid),
        env,
    })
}

/// Why `name` cannot be a service name, if it cannot. Names become directory names
/// (`<cgroup root>/oomd/<name>`) and log words, so they are plain.
fn name_problem(name: &str) -> Option<Problem> {
    if name.is_empty() {
        return Some(Problem::Empty);
    }
    if name.len() > MAX_SERVICE_NAME_LEN {
        return Some(Problem::TooLong { len: name.len() });
    }
    let plain = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !plain || name.starts_with('.') {
        return Some(Problem::Invalid {
            expected: "letters, digits, '-', '_' and '.', not starting with '.'",
        });
    }
    None
}
