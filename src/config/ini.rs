//! Reading `dwh.cfg` the way Python's configparser reads it: sections, keys, comments and
//! quotes, with errors that name the line but never show a value.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use configparser::ini::Ini;

use super::{is_secret, shown_value, Location};

/// The parsed file, read the way Python's configparser (which the original `dwh.cfg` was written
/// for) reads it, through the `configparser` crate: `key = value` or `key: value`, `#` and `;`
/// comment lines, no inline comments (a `#` in a password is part of it), section and key
/// names case-insensitive, an indented line continues the value above it, the last of repeated
/// keys wins. One pair of surrounding quotes is stripped here, as the original project's values
/// were quoted. A value that continues onto another line or holds an unbalanced quote is refused
/// naming its section and key, never the value: it is how a forgotten quote swallows the lines
/// after it (a password among them).
pub(super) struct IniFile<'a> {
    /// Section (lower case) → key (lower case) → value, quotes stripped.
    pub(super) sections: HashMap<String, HashMap<String, String>>,
    /// The sections (lower case) and their keys (lower case), sorted, for
    /// [`super::unknown::unknown_settings`].
    pub(super) order: Vec<(String, Vec<String>)>,
    /// (section, key), lower case → the line (from 1) of its last setting and the key as
    /// written there.
    pub(super) lines: KeyLines,
    pub(super) path: &'a Path,
    pub(super) base: &'a Path,
}

impl<'a> IniFile<'a> {
    pub(super) fn read(text: &str, path: &'a Path, base: &'a Path) -> Result<IniFile<'a>> {
        let lines = key_lines(text).map_err(|line| {
            // The line's text is not shown: a password wrapped onto its own line is one.
            anyhow!(
                "{}: line {line} is not KEY = value (nor a [SECTION] header, a # comment or an \
                 indented continuation): write each setting on one line as KEY = value; the \
                 line is not shown, in case it holds a password",
                path.display()
            )
        })?;
        let mut defaults = Ini::new().defaults();
        defaults.multiline = true;
        defaults.enable_inline_comments = false;
        let mut ini = Ini::new_from_defaults(defaults);
        let map = ini
            .read(text.to_string())
            .map_err(|e| anyhow!("{}: {}", path.display(), syntax_error(&e)))?;
        let mut sections = HashMap::new();
        let mut order: Vec<(String, Vec<String>)> = map
            .iter()
            .map(|(section, keys)| {
                let mut keys: Vec<String> = keys.keys().cloned().collect();
                keys.sort();
                (section.clone(), keys)
            })
            .collect();
        order.sort();
        for (section, keys) in map {
            let mut values = HashMap::new();
            for (key, value) in keys {
                let value = value.unwrap_or_default();
                let value = unquote(&value).map_err(|problem| {
                    anyhow!(
                        "{}: [{}] {}: the value {problem}: put the whole value on one line, \
                         with both quotes or none",
                        path.display(),
                        section.to_ascii_uppercase(),
                        key.to_ascii_uppercase(),
                    )
                })?;
                values.insert(key, value.to_string());
            }
            sections.insert(section, values);
        }
        Ok(IniFile {
            sections,
            order,
            lines,
            path,
            base,
        })
    }

    pub(super) fn has_section(&self, section: &str) -> bool {
        self.sections.contains_key(&section.to_ascii_lowercase())
    }

    /// The value of a key, `None` when absent or empty. Blanks around a value were dropped
    /// when it was read; inside quotes they are the value's own (`" pass "` keeps both).
    pub(super) fn get(&self, section: &str, key: &str) -> Option<String> {
        self.sections
            .get(&section.to_ascii_lowercase())?
            .get(&key.to_ascii_lowercase())
            .filter(|v| !v.is_empty())
            .cloned()
    }
    pub(super) fn path(&self, section: &str, key: &str) -> Option<PathBuf> {
        self.get(section, key).map(|v| self.base.join(v))
    }

    pub(super) fn required_location(&self, section: &str, key: &str) -> Result<Location> {
        let value = self.get(section, key).ok_or_else(|| {
            anyhow!(
                "{}: [{section}] {key} is missing or empty: set it to a path (relative paths are \
                 taken from the config file's directory) or an s3://bucket/prefix URI",
                self.path.display()
            )
        })?;
        Location::parse(&value, self.base).map_err(|e| self.key_error(section, key, &value, &e))
    }

    pub(super) fn parse_or<T: std::str::FromStr>(
        &self,
        section: &str,
        key: &str,
        default: T,
        expected: &str,
    ) -> Result<T> {
        match self.get(section, key) {
            None => Ok(default),
            Some(text) => text
                .parse()
                .map_err(|_| self.key_error(section, key, &text, expected)),
        }
    }

    /// A yes-or-no setting, read as Python's configparser reads one (`getboolean`): `1`,
    /// `yes`, `true`, `on` and `0`, `no`, `false`, `off`, in any case; `default` when absent.
    pub(super) fn boolean(&self, section: &str, key: &str, default: bool) -> Result<bool> {
        match self.get(section, key) {
            None => Ok(default),
            Some(text) => match text.trim().to_ascii_lowercase().as_str() {
                "1" | "yes" | "true" | "on" => Ok(true),
                "0" | "no" | "false" | "off" => Ok(false),
                _ => Err(self.key_error(
                    section,
                    key,
                    &text,
                    "true or false (or yes/no, on/off, 1/0)",
                )),
            },
        }
    }

    /// A whole number of `unit` within `range`, `default` when absent; anything else is an
    /// error naming the range.
    pub(super) fn bounded(
        &self,
        section: &str,
        key: &str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
        unit: &str,
    ) -> Result<u64> {
        let expected = format!(
            "{unit}, a whole number from {} to {} (default {default})",
            range.start(),
            range.end()
        );
        let value: u64 = self.parse_or(section, key, default, &expected)?;
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(self.key_error(section, key, &value.to_string(), &expected))
        }
    }

    pub(super) fn key_error(
        &self,
        section: &str,
        key: &str,
        value: &str,
        expected: &str,
    ) -> anyhow::Error {
        let shown = if is_secret(section, key) {
            "(hidden)".to_string()
        } else {
            shown_value(value)
        };
        anyhow!(
            "{}: [{section}] {key} = {shown} is not valid: set it to {expected}",
            self.path.display()
        )
    }
}

/// (section, key), lower case → (line, key as written): see [`key_lines`].
pub(super) type KeyLines = HashMap<(String, String), (usize, String)>;

/// Where each key is set, read line by line the way the configparser crate reads the file
/// (a section header `[...]`, `#` and `;` comments, an indented line continuing the value above
/// it, `key = value` or `key: value`): (section, key), lower case → (line, key as written).
/// A line that is none of these (no `=` or `:`) is the error, by its number: configparser would
/// take its text as a key without a value, and print it as an unknown key.
pub(super) fn key_lines(text: &str) -> Result<KeyLines, usize> {
    let mut lines = HashMap::new();
    let mut section = "default".to_string();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with(['#', ';']) {
            continue;
        }
        if trimmed.starts_with('[') {
            let inner = trimmed.trim_start_matches('[');
            let end = inner.rfind(']').unwrap_or(inner.len());
            section = inner[..end].trim().to_ascii_lowercase();
            continue;
        }
        if line.starts_with([' ', '\t']) {
            // A continuation: refused with its key by `unquote`.
            continue;
        }
        let Some(split) = trimmed.find(['=', ':']) else {
            return Err(index + 1);
        };
        let typed = trimmed[..split].trim().to_string();
        lines.insert(
            (section.clone(), typed.to_ascii_lowercase()),
            (index + 1, typed),
        );
    }
    Ok(lines)
}

/// configparser's message for a line it cannot read (`4:1 expecting "[Some(']')]"`), in the
/// words of the file.
pub(super) fn syntax_error(message: &str) -> String {
    // "4:1 expecting ..." or "line 4: ..." as configparser versions word it.
    let line = message.split(':').next().and_then(|n| {
        let n = n.trim();
        n.strip_prefix("line ")
            .unwrap_or(n)
            .trim()
            .parse::<u64>()
            .ok()
    });
    let what = if (message.contains("expecting") && message.contains(']'))
        || message.contains("no closing bracket")
    {
        "section header not closed: write it as [NAME]"
    } else {
        "cannot be read: a section header is [NAME], a setting KEY = value"
    };
    match line {
        Some(line) => format!("line {line}: {what}"),
        None => format!("{what} ({message})"),
    }
}

/// `value` without one pair of surrounding quotes (`'...'` or `"..."`); an error saying what is
/// wrong when it spans lines or a quote is left open.
pub(super) fn unquote(value: &str) -> Result<&str, &'static str> {
    if value.contains(['\n', '\r']) {
        return Err(
            "continues onto the next line (an indented line after a key is part of its value)",
        );
    }
    let value = value.trim();
    for quote in ['\'', '"'] {
        let opens = value.starts_with(quote);
        let closes = value.len() > 1 && value.ends_with(quote);
        match (opens, closes) {
            (true, true) => return Ok(&value[1..value.len() - 1]),
            (true, false) => return Err("opens a quote it does not close"),
            (false, true) => return Err("closes a quote it does not open"),
            (false, false) => {}
        }
    }
    Ok(value)
}
