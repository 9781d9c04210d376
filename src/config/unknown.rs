//! Sections and keys no part of the toolkit reads: typos and leftovers, each said with the
//! known name closest to it, so `DB_PASWORD` is caught instead of silently ignored.

use super::ini::IniFile;

/// Every section and key the toolkit reads: anything else in the file is a typo or a leftover,
/// which is ignored (and said so: see [`UnknownSetting`]).
pub const KNOWN_SETTINGS: &[(&str, &[&str])] = &[
    (
        "CLUSTER",
        &[
            "HOST",
            "DB_NAME",
            "DB_USER",
            "DB_PASSWORD",
            "DB_PORT",
            "SSLMODE",
            "SSLROOTCERT",
            "CONNECT_TIMEOUT",
            "REQUIRE_AUTH",
        ],
    ),
    ("IAM_ROLE", &["ARN"]),
    (
        "S3",
        &[
            "LOG_DATA",
            "LOG_JSONPATH",
            "SONG_DATA",
            "REGION",
            "ENDPOINT",
            "ATTEMPT_TIMEOUT",
            "MANIFEST_PREFIX",
            "COALESCE",
        ],
    ),
    ("LOCAL", &["LOG_DATA", "SONG_DATA", "LOG_JSONPATH"]),
    (
        "WAREHOUSE",
        &[
            "ENGINE",
            "DUCKDB_PATH",
            "DUCKDB_MEMORY_LIMIT",
            "MAX_ERRORS",
            "STRICT",
            "SCHEMA",
        ],
    ),
    ("AWS", &["KEY", "SECRET"]),
    (
        "DWH",
        &[
            "DWH_REGION",
            "DWH_NAMESPACE_NAME",
            "DWH_WORKGROUP_NAME",
            "DWH_IAM_ROLE_NAME",
            "DWH_BASE_CAPACITY",
            "DWH_MAX_CAPACITY",
            "DWH_USAGE_LIMIT_RPU_HOURS",
            "DWH_CLUSTER_IDENTIFIER",
            "DWH_INSTANCE_ID",
        ],
    ),
];

/// A section or key of the config file that nothing reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSetting {
    /// The section, upper case.
    pub section: String,
    /// The key, upper case; `None` for a whole unknown section.
    pub key: Option<String>,
    /// The known name closest to it, when one is close enough to be the one meant.
    pub closest: Option<&'static str>,
    /// The line of the file it is on, when known.
    pub line: Option<usize>,
    /// Whether the key may be printed: only a plausible setting name is (see
    /// [`plausible_key`]); anything else may be a password that lost its line.
    pub shown: bool,
}

impl UnknownSetting {
    /// What it is and the name meant, `then` between them: ", ignored" for the warning of a run
    /// that goes on, nothing for the error of one that stops (`--strict`).
    fn describe(&self, then: &str) -> String {
        match (&self.key, self.closest) {
            (None, Some(closest)) => format!(
                "unknown section [{}]{then}: did you mean [{closest}]?",
                self.section
            ),
            (None, None) => format!(
                "unknown section [{}]{then}: the sections are {}",
                self.section,
                KNOWN_SETTINGS
                    .iter()
                    .map(|(s, _)| format!("[{s}]"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            (Some(key), Some(closest)) => format!(
                "unknown key {} in [{}]{then}: did you mean {closest}?",
                self.key_shown(key),
                self.section
            ),
            (Some(key), None) => format!(
                "unknown key {} in [{}]{then}: its keys are {}",
                self.key_shown(key),
                self.section,
                known_keys(&self.section).join(", ")
            ),
        }
    }

    /// The key as a message shows it: its name when plausible, else only where it is.
    fn key_shown(&self, key: &str) -> String {
        match (self.shown, self.line) {
            (true, _) => key.to_string(),
            (false, Some(line)) => format!("on line {line} (not shown: not a setting's name)"),
            (false, None) => "(not shown: not a setting's name)".to_string(),
        }
    }

    /// As an error that stops the run (`--strict`): nothing is ignored.
    pub fn as_error(&self) -> String {
        self.describe("")
    }
}

/// As the warning of a run that goes on without it.
impl std::fmt::Display for UnknownSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe(", ignored"))
    }
}

pub(super) fn known_keys(section: &str) -> &'static [&'static str] {
    KNOWN_SETTINGS
        .iter()
        .find(|(s, _)| s.eq_ignore_ascii_case(section))
        .map_or(&[], |(_, keys)| keys)
}

/// The name of `names` closest to `typed` (letters swapped, dropped, added or changed), when
/// it is close enough to be the one meant: at most a third of its letters differ.
pub(super) fn closest(typed: &str, names: &[&'static str]) -> Option<&'static str> {
    let typed = typed.to_ascii_uppercase();
    names
        .iter()
        .map(|name| (strsim::osa_distance(&typed, name), *name))
        .filter(|(distance, name)| *distance <= (name.len() / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name)
}

/// Whether `typed` (a key as written in the file) looks like a setting's name, so that a
/// message may print it: upper-case letters, digits and underscores, starting with a letter,
/// at most 40 long (every known key is such), or close to a known key. Anything else may be
/// a value that lost its line, a password among them.
pub(super) fn plausible_key(typed: &str, closest: Option<&str>) -> bool {
    closest.is_some()
        || (typed.len() <= 40
            && typed.starts_with(|c: char| c.is_ascii_uppercase())
            && typed
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'))
}

/// Every section and key of `file` that [`KNOWN_SETTINGS`] does not hold, in file order.
pub(super) fn unknown_settings(file: &IniFile) -> Vec<UnknownSetting> {
    let sections: Vec<&'static str> = KNOWN_SETTINGS.iter().map(|(s, _)| *s).collect();
    let mut unknown = Vec::new();
    for (section, keys) in &file.order {
        let upper = section.to_ascii_uppercase();
        // configparser's section for keys before any header; empty unless such keys exist.
        if section == "default" && keys.is_empty() {
            continue;
        }
        if !sections.contains(&upper.as_str()) {
            unknown.push(UnknownSetting {
                closest: closest(&upper, &sections),
                section: upper,
                key: None,
                line: None,
                shown: true,
            });
            continue;
        }
        let known = known_keys(&upper);
        for key in keys {
            let (line, typed) = file
                .lines
                .get(&(section.clone(), key.clone()))
                .cloned()
                .unwrap_or((0, String::new()));
            let key = key.to_ascii_uppercase();
            if !known.contains(&key.as_str()) {
                let near = closest(&key, known);
                unknown.push(UnknownSetting {
                    section: upper.clone(),
                    closest: near,
                    shown: plausible_key(&typed, near),
                    line: (line > 0).then_some(line),
                    key: Some(key),
                });
            }
        }
    }
    unknown
}
