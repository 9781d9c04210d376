//! Redshift JSONPaths files: the `log_json_path.json` that maps each log record onto the staging
//! columns by position. The local engines apply the same file Redshift's `COPY` would, so both
//! paths stage the same columns from the same records.

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use serde_json::Value;

/// One step of a path: an object member or an array element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// One compiled JSONPath expression, e.g. `$['userId']` or `$.song.title` or `$['tags'][0]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    pub text: String,
    pub steps: Vec<Step>,
}

impl JsonPath {
    /// Parses the subset Redshift accepts: `$` followed by `['key']`, `["key"]`, `.key` and
    /// `[index]` steps.
    pub fn parse(text: &str) -> Result<JsonPath, String> {
        let rest = text
            .trim()
            .strip_prefix('$')
            .ok_or_else(|| format!("{text:?} does not start with $"))?;
        let mut steps = Vec::new();
        let mut chars = rest.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '.' => {
                    let start = i + 1;
                    let mut end = rest.len();
                    while let Some(&(j, c)) = chars.peek() {
                        if c == '.' || c == '[' {
                            end = j;
                            break;
                        }
                        chars.next();
                    }
                    let key = &rest[start..end];
                    if key.is_empty() {
                        return Err(format!("{text:?} has an empty member name"));
                    }
                    steps.push(Step::Key(key.to_string()));
                }
                '[' => {
                    let close = rest[i..]
                        .find(']')
                        .map(|j| i + j)
                        .ok_or_else(|| format!("{text:?} has an unclosed ["))?;
                    let inner = rest[i + 1..close].trim();
                    let quoted = ['\'', '"'].iter().find_map(|&q| {
                        inner
                            .strip_prefix(q)
                            .and_then(|s| s.strip_suffix(q))
                            .filter(|_| inner.len() >= 2)
                    });
                    let step = match quoted {
                        Some(key) => Step::Key(key.to_string()),
                        None => Step::Index(inner.parse().map_err(|_| {
                            format!("{text:?}: [{inner}] is neither a quoted name nor an index")
                        })?),
                    };
                    steps.push(step);
                    while chars.peek().is_some_and(|&(j, _)| j <= close) {
                        chars.next();
                    }
                }
                c if c.is_whitespace() => {}
                _ => return Err(format!("{text:?}: unexpected {c:?}")),
            }
        }
        if steps.is_empty() {
            return Err(format!("{text:?} selects the whole record, not a field"));
        }
        Ok(JsonPath {
            text: text.to_string(),
            steps,
        })
    }

    /// The value this path selects in `record`, `None` when absent.
    pub fn select<'v>(&self, record: &'v Value) -> Option<&'v Value> {
        self.steps
            .iter()
            .try_fold(record, |value, step| match (step, value) {
                (Step::Key(key), Value::Object(map)) => map.get(key),
                (Step::Index(i), Value::Array(items)) => items.get(*i),
                _ => None,
            })
    }
}

/// A whole JSONPaths file.
#[derive(Debug, Clone)]
pub struct JsonPaths {
    pub paths: Vec<JsonPath>,
}

impl JsonPaths {
    /// What identifies the mapping, whatever file holds it and however it is written: a 64-bit
    /// FNV-1a hash of the steps of its paths in order (`$['a']` and `$.a` are one step), in
    /// hex. The ledger keeps it, so a changed mapping makes the next load a full refresh.
    pub fn fingerprint(&self) -> String {
        let mut text = String::new();
        for path in &self.paths {
            for step in &path.steps {
                match step {
                    Step::Key(key) => text.push_str(&format!("k{}:{key}", key.len())),
                    Step::Index(index) => text.push_str(&format!("i{index}")),
                }
            }
            text.push('\n');
        }
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in text.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("fnv1a64:{hash:016x}")
    }

    /// When every path is one top-level member (`$['userId']`, the usual case), the member
    /// names in column order; the parser then reads them without building the whole record.
    pub fn top_level_keys(&self) -> Option<Vec<&str>> {
        self.paths
            .iter()
            .map(|p| match p.steps.as_slice() {
                [Step::Key(key)] => Some(key.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Reads a JSONPaths file; `expected_columns` is the number of staging columns it must map.
    pub fn load(path: &Path, expected_columns: usize) -> Result<JsonPaths> {
        // A JSONPaths file is a few hundred bytes; 1 MiB bounds a device or FIFO named instead.
        let text = crate::files::read_small(path, 1 << 20).map_err(|e| {
            anyhow!(
                "cannot read the JSONPaths file {}: {e}: set [LOCAL] LOG_JSONPATH to its path",
                path.display()
            )
        })?;
        Self::parse(&text, expected_columns)
            .map_err(|e| anyhow!("JSONPaths file {}: {e}", path.display()))
    }

    pub fn parse(text: &[u8], expected_columns: usize) -> Result<JsonPaths> {
        let document: Value = serde_json::from_slice(text).map_err(|e| {
            anyhow!("not valid JSON ({e}): it must be {{\"jsonpaths\": [\"$['field']\", ...]}}")
        })?;
        let Some(Value::Array(items)) = document.get("jsonpaths") else {
            bail!("it has no \"jsonpaths\" array: it must be {{\"jsonpaths\": [\"$['field']\", ...]}}");
        };
        if items.len() != expected_columns {
            bail!(
                "it has {} paths but staging_events has {expected_columns} columns: give one path per column, in column order",
                items.len()
            );
        }
        let paths = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let text = item
                    .as_str()
                    .ok_or_else(|| anyhow!("path {} is {item}, not a string", i + 1))?;
                JsonPath::parse(text).map_err(|e| anyhow!("path {}: {e}", i + 1))
            })
            .collect::<Result<_>>()?;
        Ok(JsonPaths { paths })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_fingerprint_follows_the_steps_not_the_spelling() {
        let mapping = |text: &str| JsonPaths::parse(text.as_bytes(), 2).unwrap().fingerprint();
        let quoted = mapping(r#"{"jsonpaths": ["$['a']", "$['b'][0]"]}"#);
        assert_eq!(quoted, mapping(r#"{"jsonpaths": ["$.a", "$[\"b\"][0]"]}"#));
        assert_ne!(quoted, mapping(r#"{"jsonpaths": ["$['b'][0]", "$['a']"]}"#));
        assert_ne!(quoted, mapping(r#"{"jsonpaths": ["$['a']", "$['b'][1]"]}"#));
        // A key holding what another split into two steps is another mapping.
        assert_ne!(
            mapping(r#"{"jsonpaths": ["$['a']['b']", "$['c']"]}"#),
            mapping(r#"{"jsonpaths": ["$['ab']", "$['c']"]}"#)
        );
    }

    #[test]
    fn parses_bracket_dot_and_index_steps() {
        let p = JsonPath::parse("$['a'][\"b\"].c[2]").unwrap();
        assert_eq!(
            p.steps,
            vec![
                Step::Key("a".into()),
                Step::Key("b".into()),
                Step::Key("c".into()),
                Step::Index(2)
            ]
        );
        let record = json!({"a": {"b": {"c": [0, 1, "x"]}}});
        assert_eq!(p.select(&record), Some(&json!("x")));
        assert_eq!(JsonPath::parse("$.missing").unwrap().select(&record), None);
    }

    #[test]
    fn rejects_malformed_paths() {
        assert!(JsonPath::parse("['a']").is_err());
        assert!(JsonPath::parse("$['a'").is_err());
        assert!(JsonPath::parse("$").is_err());
        assert!(JsonPath::parse("$[x]").is_err());
    }

    #[test]
    fn file_needs_a_jsonpaths_array_of_the_right_length() {
        let ok = JsonPaths::parse(br#"{"jsonpaths": ["$['a']", "$.b"]}"#, 2).unwrap();
        assert_eq!(ok.paths.len(), 2);
        assert_eq!(ok.top_level_keys(), Some(vec!["a", "b"]));
        let nested = JsonPaths::parse(br#"{"jsonpaths": ["$['a']", "$.b.c"]}"#, 2).unwrap();
        assert_eq!(nested.top_level_keys(), None);
        let err = JsonPaths::parse(br#"{"paths": []}"#, 2)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no \"jsonpaths\" array"), "{err}");
        let err = JsonPaths::parse(br#"{"jsonpaths": ["$.a"]}"#, 2)
            .unwrap_err()
            .to_string();
        assert!(err.contains("1 paths but staging_events has 2"), "{err}");
        assert!(JsonPaths::parse(b"{", 2).is_err());
    }
}
