//! The ledger of incremental loads (`loaded_files`): which source files staging holds, and what
//! identified each one's contents when it was loaded. A run compares the files it finds with
//! the ledger to decide what to read: only the new files (an incremental load), everything
//! again (a full refresh), or nothing at all.

use std::collections::HashMap;

use anyhow::Result;

use crate::etl::Inputs;
use crate::record::{Field, Row};
use crate::schema::LOADED_FILES;
use crate::source::{Discovered, SourceFile};
use crate::stats::SourceStats;
use crate::warehouse::{Cell, Warehouse};

/// The ledger's source for the JSONPaths mapping of the logs.
pub const MAPPING_SOURCE: &str = "log_jsonpath";

/// How a run loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadMode {
    /// Staging and the star schema rebuilt from every file; says why.
    FullRefresh(String),
    /// Only the new files read, and what they change merged into the star schema.
    Incremental,
    /// No file is new or changed: nothing is read and nothing changes.
    NothingNew,
}

/// How the files found compare with the ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileChanges {
    /// Found, and not in the ledger.
    pub new: usize,
    /// In the ledger with another size or version.
    pub changed: usize,
    /// In the ledger with the same size and version.
    pub unchanged: usize,
    /// In the ledger, no longer found: their records stay until a full refresh.
    pub gone: usize,
}

/// What a run will load.
#[derive(Debug, Clone)]
pub struct Plan {
    pub mode: LoadMode,
    pub changes: FileChanges,
    /// The song files to read: all of them for a full refresh, the new ones otherwise.
    pub songs: Vec<SourceFile>,
    /// The log files to read, likewise.
    pub logs: Vec<SourceFile>,
}

/// Decides what a run reads from `songs` and `logs` (found by [`crate::source::discover`]),
/// given the ledger in `warehouse`. A file is known by its source and its name as
/// `load_errors` gives it; it is unchanged when size and version match. A changed file makes
/// the run a full refresh: its earlier records cannot be told apart in staging. So does an
/// empty ledger (the first load, or a warehouse loaded before the ledger existed), and
/// `full_refresh`.
pub fn plan(warehouse: &mut dyn Warehouse, inputs: &Inputs, full_refresh: bool) -> Result<Plan> {
    let (songs, logs) = (&inputs.songs, &inputs.logs);
    let ledger = warehouse.query(&crate::sql::ledger_entries())?;
    let mut known: HashMap<(String, String), (i64, String)> = HashMap::new();
    for row in &ledger.rows {
        if let [Cell::Text(source), Cell::Text(file), Cell::Int(bytes), version] = row.as_slice() {
            let version = match version {
                Cell::Text(v) => v.clone(),
                _ => String::new(),
            };
            known.insert((source.clone(), file.clone()), (*bytes, version));
        }
    }
    // The JSONPaths mapping types every log record: when it changed, so could every record.
    let mapping_row = known
        .keys()
        .find(|(source, _)| source == MAPPING_SOURCE)
        .cloned();
    let mapping_changed = match mapping_row.and_then(|key| known.remove(&key)) {
        Some((_, version)) => version != inputs.mapping.fingerprint(),
        None => true,
    };
    let mut changes = FileChanges::default();
    let mut new_files = |source: &str, discovered: &Discovered| -> Vec<SourceFile> {
        let mut new = Vec::new();
        for file in &discovered.files {
            let key = (source.to_string(), file.location.to_string());
            match known.remove(&key) {
                // An unreadable file never entered the ledger; one that did is read again.
                Some((bytes, version))
                    if file.unreadable.is_none()
                        && bytes == file.size as i64
                        && version == file.version =>
                {
                    changes.unchanged += 1
                }
                Some(_) => {
                    changes.changed += 1;
                    new.push(file.clone());
                }
                None => {
                    changes.new += 1;
                    new.push(file.clone());
                }
            }
        }
        new
    };
    let new_songs = new_files(crate::parse::SourceKind::Song.name(), songs);
    let new_logs = new_files(crate::parse::SourceKind::Log.name(), logs);
    changes.gone = known.len();
    let mode = if full_refresh {
        LoadMode::FullRefresh("--full-refresh".into())
    } else if ledger.rows.is_empty() {
        LoadMode::FullRefresh("the ledger is empty: no file was loaded before".into())
    } else if mapping_changed {
        LoadMode::FullRefresh(format!(
            "the JSONPaths mapping {} differs from the one of the last load",
            inputs.mapping_file
        ))
    } else if changes.changed > 0 {
        LoadMode::FullRefresh(format!(
            "{} file(s) changed since they were loaded",
            changes.changed
        ))
    } else if changes.new == 0 {
        LoadMode::NothingNew
    } else {
        LoadMode::Incremental
    };
    let (songs, logs) = match mode {
        LoadMode::FullRefresh(_) => (songs.files.clone(), logs.files.clone()),
        LoadMode::Incremental => (new_songs, new_logs),
        LoadMode::NothingNew => (Vec::new(), Vec::new()),
    };
    Ok(Plan {
        mode,
        changes,
        songs,
        logs,
    })
}

/// Records the JSONPaths mapping a full refresh typed the logs with (its fingerprint as the
/// version, the number of paths as records).
pub fn record_mapping(
    warehouse: &mut dyn Warehouse,
    inputs: &Inputs,
    loaded_at: &str,
) -> Result<()> {
    let paths = inputs.mapping.paths.len() as i64;
    let row = vec![
        Field::Text(MAPPING_SOURCE.to_string()),
        Field::Text(inputs.mapping_file.clone()),
        Field::Int(0),
        Field::Text(inputs.mapping.fingerprint()),
        Field::Int(paths),
        Field::Int(0),
        Field::Int(0),
        Field::Text(loaded_at.to_string()),
    ];
    warehouse.insert_rows(&LOADED_FILES, &[row])
}

/// Adds a ledger row for every file a load read (the files it could not read are left out, so
/// the next run tries them again). `files` are the files it was given, for their size and
/// version; `loaded_at` is when the run started (UTC, ISO 8601). Where Redshift's COPY read
/// the files, records and staged are NULL: it counts its rows per COPY, not per file.
pub fn record(
    warehouse: &mut dyn Warehouse,
    stats: &SourceStats,
    files: &[SourceFile],
    loaded_at: &str,
) -> Result<()> {
    let by_name: HashMap<String, &SourceFile> =
        files.iter().map(|f| (f.location.to_string(), f)).collect();
    let rows: Vec<Row> = stats
        .yields
        .iter()
        .filter_map(|y| {
            let file = by_name.get(&y.file)?;
            let count = |n: Option<u64>| n.map_or(Field::Null, |n| Field::Int(n as i64));
            Some(vec![
                Field::Text(stats.source.to_string()),
                Field::Text(y.file.clone()),
                Field::Int(file.size as i64),
                Field::Text(file.version.clone()),
                count(y.staged.map(|staged| staged + y.rejected)),
                count(y.staged),
                Field::Int(y.rejected as i64),
                Field::Text(loaded_at.to_string()),
            ])
        })
        .collect();
    warehouse.insert_rows(&LOADED_FILES, &rows)
}
