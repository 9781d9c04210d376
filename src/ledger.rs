//! The ledger of incremental loads (`loaded_files`): which source files staging holds, and what
//! identified each one's contents when it was loaded. A run compares the files it finds with
//! the ledger to decide what to read: only the new files (an incremental load), everything
//! again (a full refresh), or nothing at all.
//!
//! A file is known by its source and its path relative to its source root (see
//! [`Discovered::relative_name`]), never by the working directory or how the config's path is
//! spelt; and by its contents: its size and, for a local file, a SHA-256 of its bytes (an S3
//! object by its ETag). A new modification time alone (`touch`, `cp`, `git checkout`) is not
//! a change; a log file whose old bytes are a prefix of its new ones only grew, and only what
//! was appended is read. Entries written by earlier releases, which named files by the path
//! the run saw, are renamed on the next run.

use std::collections::HashMap;
use std::fmt::Write;
use std::io::Read;

use anyhow::Result;

use crate::parse::SourceKind;
use crate::record::{escape_controls, Field, Row};
use crate::schema::LOADED_FILES;
use crate::source::{Discovered, Inputs, SourceFile};
use crate::stats::SourceStats;
use crate::warehouse::{Cell, Warehouse};

/// The ledger's source for the JSONPaths mapping of the logs.
pub const MAPPING_SOURCE: &str = "log_jsonpath";

/// How a run loads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LoadMode {
    /// Staging and the star schema rebuilt from every file; says why.
    FullRefresh(String),
    /// Only the new files read, and what they change merged into the star schema.
    Incremental,
    /// No file is new or changed: nothing is read and nothing changes.
    #[default]
    NothingNew,
}

/// How the files found compare with the ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileChanges {
    /// Found, and not in the ledger.
    pub new: usize,
    /// In the ledger with other contents.
    pub changed: usize,
    /// Log files in the ledger that only grew: what was appended is read.
    pub appended: usize,
    /// In the ledger with the same contents.
    pub unchanged: usize,
    /// Of the unchanged, those with a new modification time (their hash said the same).
    pub touched: usize,
    /// In the ledger, no longer found.
    pub gone: usize,
}

/// One row of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub source: String,
    pub file: String,
    pub bytes: i64,
    pub version: String,
    pub records: Option<i64>,
    pub staged: Option<i64>,
    pub rejected: i64,
    pub loaded_at: String,
}

impl Entry {
    fn from_row(row: &[Cell]) -> Option<Entry> {
        let text = |cell: &Cell| match cell {
            Cell::Text(t) => t.clone(),
            _ => String::new(),
        };
        let int = |cell: &Cell| match cell {
            Cell::Int(i) => Some(*i),
            _ => None,
        };
        match row {
            [source, file, bytes, version, records, staged, rejected, loaded_at] => Some(Entry {
                source: text(source),
                file: text(file),
                bytes: int(bytes)?,
                version: text(version),
                records: int(records),
                staged: int(staged),
                rejected: int(rejected).unwrap_or(0),
                loaded_at: text(loaded_at),
            }),
            _ => None,
        }
    }

    fn to_row(&self) -> Row {
        let count = |n: Option<i64>| n.map_or(Field::Null, Field::Int);
        vec![
            Field::Text(self.source.clone()),
            Field::Text(self.file.clone()),
            Field::Int(self.bytes),
            Field::Text(self.version.clone()),
            count(self.records),
            count(self.staged),
            Field::Int(self.rejected),
            Field::Text(self.loaded_at.clone()),
        ]
    }

    /// The modification time and the content hash a local file's version holds
    /// (`MTIME sha256=HEX`); an entry of an earlier release holds the time alone.
    fn local_version(&self) -> (&str, Option<&str>) {
        match self.version.split_once(' ') {
            Some((mtime, digest)) if digest.starts_with("sha256=") => (mtime, Some(digest)),
            _ => (self.version.as_str(), None),
        }
    }

    /// Whether an earlier release may have written it, naming the file by the path it was
    /// read at: an S3 URI, or for a `local` source an entry without a content hash.
    fn is_legacy(&self, local: bool) -> bool {
        if local {
            !self.version.contains(" sha256=")
        } else {
            self.file.starts_with("s3://")
        }
    }
}

/// The version the ledger keeps of a local file: its modification time and content hash.
pub fn local_version(mtime: &str, digest: &str) -> String {
    format!("{mtime} {digest}")
}

/// What a run will load, and how the ledger's entries change before it does.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub mode: LoadMode,
    pub changes: FileChanges,
    /// The song files to read: all of them for a full refresh, the new ones otherwise.
    pub songs: Vec<SourceFile>,
    /// The log files to read, likewise; a grown one from where its loaded bytes end.
    pub logs: Vec<SourceFile>,
    /// Entries to remove before the load: renamed, touched or grown files' old rows.
    pub forget: Vec<(String, String)>,
    /// Entries to add back before the load: renamed and touched files' rows as they are now.
    pub rewrite: Vec<Entry>,
    /// The entries of grown files as they were, by (source, file): their counts add up.
    pub grown: HashMap<(String, String), Entry>,
}

/// How one found file compares with its entry.
enum Comparison {
    Unchanged,
    /// Same contents, new modification time: the entry's version is brought up to date.
    Touched(String),
    /// Only grew: read from `offset` (after `lines` lines); `digest` is the whole file's.
    Grown {
        offset: u64,
        lines: u64,
        digest: String,
    },
    Changed,
}

/// Decides what a run reads from `inputs` (found by [`crate::source::discover`]), given the
/// ledger in `warehouse`. A changed file makes the run a full refresh, naming it: its earlier
/// records cannot be told apart in staging. So does an empty ledger (the first load, or a
/// warehouse loaded before the ledger existed), a changed JSONPaths mapping, and
/// `full_refresh`.
pub fn plan(warehouse: &mut dyn Warehouse, inputs: &Inputs, full_refresh: bool) -> Result<Plan> {
    let ledger = warehouse.query(&crate::sql::ledger_entries())?;
    let entries: Vec<Entry> = ledger
        .rows
        .iter()
        .filter_map(|row| Entry::from_row(row))
        .collect();
    let ledger_empty = entries.is_empty();
    let mut known: HashMap<(String, String), Entry> = HashMap::new();
    let mut mapping = None;
    for entry in entries {
        if entry.source == MAPPING_SOURCE {
            mapping = Some(entry);
        } else {
            known.insert((entry.source.clone(), entry.file.clone()), entry);
        }
    }
    // The JSONPaths mapping types every log record: when it changed, so could every record.
    let mapping_changed = mapping.is_none_or(|m| m.version != inputs.mapping.fingerprint());

    let mut plan = Plan::default();
    let mut first_changed = None;
    let mut new_files = |kind: SourceKind, discovered: &Discovered, plan: &mut Plan| {
        let source = kind.name().to_string();
        let names: Vec<String> = discovered
            .files
            .iter()
            .map(|f| discovered.relative_name(f))
            .collect();
        let renamed = legacy_names(&mut known, &source, discovered, &names);
        let mut to_read = Vec::new();
        for (file, name) in discovered.files.iter().zip(&names) {
            let key = (source.clone(), name.clone());
            let entry = match known.remove(&key) {
                Some(entry) => Some(entry),
                None => renamed.get(name).cloned(),
            };
            let Some(entry) = entry else {
                plan.changes.new += 1;
                to_read.push(file.clone());
                continue;
            };
            if entry.file != *name {
                plan.forget.push((source.clone(), entry.file.clone()));
            }
            let renamed_entry = Entry {
                file: name.clone(),
                ..entry.clone()
            };
            match compare(kind, file, &entry) {
                Comparison::Unchanged => {
                    plan.changes.unchanged += 1;
                    if entry.file != *name {
                        plan.rewrite.push(renamed_entry);
                    }
                }
                Comparison::Touched(version) => {
                    plan.changes.unchanged += 1;
                    plan.changes.touched += 1;
                    if entry.file == *name {
                        plan.forget.push(key.clone());
                    }
                    plan.rewrite.push(Entry {
                        version,
                        ..renamed_entry
                    });
                }
                Comparison::Grown {
                    offset,
                    lines,
                    digest,
                } => {
                    plan.changes.appended += 1;
                    if entry.file == *name {
                        plan.forget.push(key.clone());
                    }
                    plan.grown.insert(key, renamed_entry);
                    to_read.push(SourceFile {
                        offset,
                        lines_before: lines,
                        digest: Some(digest),
                        ..file.clone()
                    });
                }
                Comparison::Changed => {
                    plan.changes.changed += 1;
                    first_changed.get_or_insert_with(|| format!("[{source}] {name}"));
                    to_read.push(file.clone());
                }
            }
        }
        to_read
    };
    let new_songs = new_files(SourceKind::Song, &inputs.songs, &mut plan);
    let new_logs = new_files(SourceKind::Log, &inputs.logs, &mut plan);
    plan.changes.gone = known.len();
    plan.mode = if full_refresh {
        LoadMode::FullRefresh("--full-refresh".into())
    } else if ledger_empty {
        LoadMode::FullRefresh("the ledger is empty: no file was loaded before".into())
    } else if mapping_changed {
        LoadMode::FullRefresh(format!(
            "the JSONPaths mapping {} differs from the one of the last load",
            inputs.mapping_file
        ))
    } else if plan.changes.changed > 0 {
        let first = first_changed.unwrap_or_default();
        LoadMode::FullRefresh(if plan.changes.changed == 1 {
            format!("{first} changed since it was loaded")
        } else {
            format!(
                "{} files changed since they were loaded, the first {first}",
                plan.changes.changed
            )
        })
    } else if plan.changes.new == 0 && plan.changes.appended == 0 {
        LoadMode::NothingNew
    } else {
        LoadMode::Incremental
    };
    (plan.songs, plan.logs) = match plan.mode {
        // Staging and the ledger are emptied: every file is read whole and entered anew.
        LoadMode::FullRefresh(_) => {
            plan.forget.clear();
            plan.rewrite.clear();
            plan.grown.clear();
            (inputs.songs.files.clone(), inputs.logs.files.clone())
        }
        LoadMode::Incremental => (new_songs, new_logs),
        LoadMode::NothingNew => (Vec::new(), Vec::new()),
    };
    Ok(plan)
}

/// Entries an earlier release wrote for files of this source, by the relative name of the
/// found file each names: an S3 URI is the root's URI and the name; a local path ends in the
/// root's last component and then the name (the working directory the path was relative to is
/// not known, so the first such ending that names a found file is taken). Each is taken out
/// of `known`.
fn legacy_names(
    known: &mut HashMap<(String, String), Entry>,
    source: &str,
    discovered: &Discovered,
    names: &[String],
) -> HashMap<String, Entry> {
    let found: std::collections::HashSet<&str> = names.iter().map(String::as_str).collect();
    let local = matches!(discovered.root, crate::config::Location::File(_));
    let legacy: Vec<(String, String)> = known
        .iter()
        .filter(|((s, file), entry)| {
            s == source && entry.is_legacy(local) && !found.contains(file.as_str())
        })
        .map(|(key, _)| key.clone())
        .collect();
    if legacy.is_empty() {
        return HashMap::new();
    }
    let root_uri = discovered.root.to_string();
    let root_name = discovered.root_name();
    let mut renamed = HashMap::new();
    for key in legacy {
        let old = key.1.as_str();
        let candidate = if let Some(rest) = old.strip_prefix(root_uri.as_str()) {
            Some(rest.trim_start_matches('/').to_string())
        } else if let Some(root_name) = &root_name {
            let marker = format!("{root_name}/");
            old.match_indices(&marker)
                .filter(|(at, _)| *at == 0 || old[..*at].ends_with('/'))
                .map(|(at, _)| old[at + marker.len()..].to_string())
                .find(|rest| found.contains(rest.as_str()))
        } else {
            None
        };
        if let Some(name) = candidate.filter(|n| found.contains(n.as_str())) {
            if renamed.contains_key(&name)
                || known.contains_key(&(source.to_string(), name.clone()))
            {
                continue; // the name has an entry already: the old one stays, as gone
            }
            if let Some(entry) = known.remove(&key) {
                renamed.insert(name, entry);
            }
        }
    }
    renamed
}

/// How `file` compares with `entry`, its ledger row.
fn compare(kind: SourceKind, file: &SourceFile, entry: &Entry) -> Comparison {
    if file.unreadable.is_some() {
        // An unreadable file never entered the ledger; one that did is read again.
        return Comparison::Changed;
    }
    let crate::config::Location::File(path) = &file.location else {
        // An S3 object: its ETag changes with its contents.
        return if entry.bytes == file.size as i64 && entry.version == file.version {
            Comparison::Unchanged
        } else {
            Comparison::Changed
        };
    };
    let (mtime, digest) = entry.local_version();
    let size = file.size as i64;
    if size == entry.bytes && mtime == file.version {
        return Comparison::Unchanged;
    }
    let Some(digest) = digest else {
        return Comparison::Changed; // no hash to tell: an entry of an earlier release
    };
    let may_have_grown = kind == SourceKind::Log && size > entry.bytes;
    if size != entry.bytes && !may_have_grown {
        return Comparison::Changed;
    }
    match hash_file(path, entry.bytes as u64) {
        Ok(seen) if size == entry.bytes && seen.whole == digest => {
            Comparison::Touched(local_version(&file.version, digest))
        }
        Ok(seen) if may_have_grown && seen.prefix == digest && seen.prefix_ends_a_line => {
            Comparison::Grown {
                offset: entry.bytes as u64,
                lines: seen.prefix_lines,
                digest: seen.whole,
            }
        }
        _ => Comparison::Changed,
    }
}

/// What one pass over a local file tells of it.
struct Hashed {
    /// The hash of its first `prefix` bytes.
    prefix: String,
    /// The line ends among them.
    prefix_lines: u64,
    /// Whether they end at a line end (or are none), so that what follows starts a record.
    prefix_ends_a_line: bool,
    /// The hash of the whole file.
    whole: String,
}

fn hash_file(path: &std::path::Path, prefix: u64) -> std::io::Result<Hashed> {
    use sha2::Digest;
    // Never a FIFO or device put in the file's place: it could hang or never end.
    let (mut file, _) = crate::files::open_regular(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut read = 0u64;
    let mut lines = 0u64;
    let mut last = b'\n';
    let mut at_prefix = None;
    if prefix == 0 {
        at_prefix = Some((hasher.clone(), 0, true));
    }
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        let mut chunk = &buffer[..n];
        if at_prefix.is_none() && read + n as u64 >= prefix {
            let cut = (prefix - read) as usize;
            hasher.update(&chunk[..cut]);
            lines += chunk[..cut].iter().filter(|&&b| b == b'\n').count() as u64;
            if cut > 0 {
                last = chunk[cut - 1];
            }
            at_prefix = Some((hasher.clone(), lines, last == b'\n'));
            chunk = &chunk[cut..];
            read += cut as u64;
        } else if at_prefix.is_none() {
            lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
            last = chunk[n - 1];
        }
        hasher.update(chunk);
        read += chunk.len() as u64;
    }
    let (prefix_hasher, prefix_lines, prefix_ends_a_line) = match at_prefix {
        Some(state) => state,
        // The file is shorter than the prefix: it cannot have grown from it.
        None => (sha2::Sha256::new(), lines, false),
    };
    Ok(Hashed {
        prefix: crate::source::digest_text(&prefix_hasher.finalize()),
        prefix_lines,
        prefix_ends_a_line,
        whole: crate::source::digest_text(&hasher.finalize()),
    })
}

/// Brings the ledger's entries up to date before a load reads anything (see [`Plan::forget`]
/// and [`Plan::rewrite`]), inside the load's transaction.
pub fn apply_renames(warehouse: &mut dyn Warehouse, plan: &Plan) -> Result<()> {
    for statement in crate::sql::forget_ledger_entries(warehouse.dialect(), &plan.forget) {
        warehouse.execute(&statement)?;
    }
    if !plan.rewrite.is_empty() {
        let rows: Vec<Row> = plan.rewrite.iter().map(Entry::to_row).collect();
        warehouse.insert_rows(&LOADED_FILES, &rows)?;
    }
    Ok(())
}

/// Records the JSONPaths mapping a full refresh typed the logs with (its fingerprint as the
/// version, the number of paths as records).
pub fn record_mapping(
    warehouse: &mut dyn Warehouse,
    inputs: &Inputs,
    loaded_at: &str,
) -> Result<()> {
    let entry = Entry {
        source: MAPPING_SOURCE.to_string(),
        file: inputs.mapping_file.clone(),
        bytes: 0,
        version: inputs.mapping.fingerprint(),
        records: Some(inputs.mapping.paths.len() as i64),
        staged: Some(0),
        rejected: 0,
        loaded_at: loaded_at.to_string(),
    };
    warehouse.insert_rows(&LOADED_FILES, &[entry.to_row()])
}

/// Adds a ledger row for every file a load read (the files it could not read are left out, so
/// the next run tries them again), named relative to `discovered`'s root. `files` are the
/// files it was given, for their size and version; `loaded_at` is when the run started (UTC,
/// ISO 8601). A grown file's row adds this run's counts to those of `plan.grown`. Where
/// Redshift's COPY read the files, records and staged are NULL: it counts its rows per COPY,
/// not per file.
pub fn record(
    warehouse: &mut dyn Warehouse,
    stats: &SourceStats,
    files: &[SourceFile],
    discovered: &Discovered,
    plan: &Plan,
    loaded_at: &str,
) -> Result<()> {
    let by_name: HashMap<String, &SourceFile> =
        files.iter().map(|f| (f.location.to_string(), f)).collect();
    let rows: Vec<Row> = stats
        .yields
        .iter()
        .filter_map(|y| {
            let file = by_name.get(&y.file)?;
            let name = discovered.relative_name(file);
            let version = match (&file.location, stats.digests.get(&y.file)) {
                (crate::config::Location::File(_), Some(digest)) => {
                    local_version(&file.version, digest)
                }
                _ => file.version.clone(),
            };
            let before = plan.grown.get(&(stats.source.to_string(), name.clone()));
            let add = |now: Option<u64>, then: Option<i64>| match before {
                Some(_) => now.zip(then).map(|(a, b)| a as i64 + b),
                None => now.map(|n| n as i64),
            };
            let entry = Entry {
                source: stats.source.to_string(),
                file: name,
                bytes: file.size as i64,
                version,
                records: add(
                    y.staged.map(|staged| staged + y.rejected),
                    before.and_then(|b| b.records),
                ),
                staged: add(y.staged, before.and_then(|b| b.staged)),
                rejected: y.rejected as i64 + before.map_or(0, |b| b.rejected),
                loaded_at: loaded_at.to_string(),
            };
            Some(entry.to_row())
        })
        .collect();
    warehouse.insert_rows(&LOADED_FILES, &rows)
}

impl Plan {
    /// What `etl --dry-run` says a run would read: the `load:` line it would print and the
    /// files it would read (up to `shown` of them by name), or why it cannot plan.
    pub fn describe(&self, shown: usize) -> String {
        let plan = self;
        let mut out = plan_line("load (would be)", &plan.mode, Some(&plan.changes));
        let files: Vec<String> = [("song_data", &plan.songs), ("log_data", &plan.logs)]
            .iter()
            .flat_map(|(source, files)| {
                files.iter().map(move |f| {
                    let grown = if f.offset > 0 {
                        format!(" (from byte {})", f.offset)
                    } else {
                        String::new()
                    };
                    format!(
                        "  [{source}] {}{grown}",
                        escape_controls(&f.location.to_string())
                    )
                })
            })
            .collect();
        if matches!(plan.mode, LoadMode::Incremental) {
            let _ = write!(out, "\nfiles it would read ({}):", files.len());
            for line in files.iter().take(shown) {
                let _ = write!(out, "\n{line}");
            }
            if files.len() > shown {
                let _ = write!(out, "\n  ... and {} more", files.len() - shown);
            }
        }
        out.push('\n');
        out
    }
}

/// `{label}: ` how a run loads (`mode`), and how the files compared with the ledger
/// (`changes`).
pub fn plan_line(label: &str, mode: &LoadMode, changes: Option<&FileChanges>) -> String {
    let files = changes.map(|c| {
        let mut parts = vec![format!("{} new", c.new), format!("{} changed", c.changed)];
        if c.appended > 0 {
            parts.push(format!(
                "{} grown (only what was appended read)",
                c.appended
            ));
        }
        parts.push(format!("{} unchanged", c.unchanged));
        if c.touched > 0 {
            parts.push(format!(
                "of which {} touched (new modification time, same contents)",
                c.touched
            ));
        }
        if c.gone > 0 {
            let records = if matches!(mode, LoadMode::FullRefresh(_)) {
                "their records are gone with this full refresh"
            } else {
                "their records stay until --full-refresh"
            };
            parts.push(format!("{} no longer found ({records})", c.gone));
        }
        format!("files: {}", parts.join(", "))
    });
    let files = files.map_or(String::new(), |f| format!("; {f}"));
    match mode {
        LoadMode::FullRefresh(why) => format!("{label}: full refresh ({why}){files}"),
        LoadMode::Incremental => format!("{label}: incremental, only the new files read{files}"),
        LoadMode::NothingNew => format!(
            "{label}: nothing new, nothing read or changed; the warehouse is as it was{files}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashed(text: &[u8], prefix: u64) -> Hashed {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        std::fs::write(&path, text).unwrap();
        hash_file(&path, prefix).unwrap()
    }

    #[test]
    fn one_pass_hashes_the_prefix_and_the_whole_file() {
        use crate::source::content_digest;
        let text = b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n";
        for prefix in [0u64, 8, 16, 24] {
            let seen = hashed(text, prefix);
            assert_eq!(seen.prefix, content_digest(&text[..prefix as usize]));
            assert_eq!(seen.whole, content_digest(text));
            assert_eq!(seen.prefix_lines, prefix / 8);
            assert!(seen.prefix_ends_a_line, "{prefix}");
        }
        let seen = hashed(text, 5);
        assert!(!seen.prefix_ends_a_line);
        assert_eq!(seen.prefix, content_digest(&text[..5]));
        // Shorter than the prefix: nothing it could have grown from.
        assert!(!hashed(text, 100).prefix_ends_a_line);
    }

    #[test]
    fn versions_hold_the_time_and_the_hash_and_old_ones_the_time_alone() {
        let mut entry = Entry {
            source: "log_data".into(),
            file: "2018/11/a.json".into(),
            bytes: 3,
            version: local_version("123", "sha256=ab"),
            records: Some(1),
            staged: Some(1),
            rejected: 0,
            loaded_at: String::new(),
        };
        assert_eq!(entry.local_version(), ("123", Some("sha256=ab")));
        assert!(!entry.is_legacy(true));
        entry.version = "123".into();
        assert_eq!(entry.local_version(), ("123", None));
        assert!(entry.is_legacy(true));
        assert!(!entry.is_legacy(false));
        entry.file = "s3://bucket/log_data/2018/11/a.json".into();
        assert!(entry.is_legacy(false));
    }
}
