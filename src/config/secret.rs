//! Passwords and secret keys: a type whose `Debug` and `Display` never show the value, and
//! which keys of `dwh.cfg` are secret, so no error or log line prints one.

use std::fmt;

/// A value that must never be printed: passwords and secret keys. `Debug` and `Display` show
/// `***`; the value itself is reached only through [`Secret::expose`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A secret, which from now on the log never shows either (see [`crate::redact`]).
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        crate::redact::register(&value);
        Secret(value)
    }

    /// The secret itself, for the one place that hands it to a driver.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Keys whose values are never shown, in errors or anywhere else.
const SECRET_KEYS: [(&str, &str); 3] = [
    ("CLUSTER", "DB_PASSWORD"),
    ("AWS", "KEY"),
    ("AWS", "SECRET"),
];

pub(super) fn is_secret(section: &str, key: &str) -> bool {
    SECRET_KEYS
        .iter()
        .any(|(s, k)| s.eq_ignore_ascii_case(section) && k.eq_ignore_ascii_case(key))
}

/// A config value as errors show it: escaped (no control character reaches the terminal) and
/// cut to a readable length.
pub fn shown_value(value: &str) -> String {
    const SHOWN_CHARS: usize = 60;
    let mut cut: String = value.chars().take(SHOWN_CHARS).collect();
    if cut.len() < value.len() {
        cut.push_str("...");
    }
    format!("{cut:?}")
}
