//! The `etl` job: stage the sources (all of them, or only the files new since the last run:
//! see [`crate::ledger`]), transform staging into the star schema (or merge what the new files
//! change into it), check that every record is accounted for and run the quality checks, all in
//! one transaction. If any step fails, a check fails, or more records are rejected than
//! `[WAREHOUSE] MAX_ERRORS` allows, the transaction is rolled back and the warehouse is exactly
//! as it was before the run.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};

use crate::checks::{self, CheckOutcome, CheckScope};
use crate::config::{Config, Location, Sources};
use crate::jsonpaths::JsonPaths;
use crate::ledger::{self, FileChanges, LoadMode};
use crate::load::{load_source, Unreadable};
use crate::parse::SourceKind;
use crate::progress::Progress;
use crate::s3::S3Store;
use crate::schema::{
    Table, ALL_TABLES, INCOMING_EVENTS, INCOMING_SONGS, LOADED_FILES, LOAD_ERRORS, STAGING_EVENTS,
    STAGING_SONGS, STAR_TABLES,
};
use crate::source::{discover, Inputs};
use crate::sql;
use crate::stats::SourceStats;
use crate::warehouse::{Cell, S3Load, Warehouse};

/// What an `etl` run did, for the summary.
#[derive(Debug, Clone)]
pub struct EtlReport {
    pub warehouse: String,
    pub sources: Vec<SourceStats>,
    /// Rows per table after the run.
    pub tables: Vec<(&'static str, i64)>,
    /// Wall time per phase, in order.
    pub phases: Vec<(&'static str, Duration)>,
    /// The process's peak memory when the run ended, where the system says.
    pub peak_memory: Option<u64>,
    /// The quality checks run after the transform (none with `--no-checks`).
    pub checks: Vec<CheckOutcome>,
    /// Whether the run read everything, only the new files, or nothing.
    pub mode: LoadMode,
    /// How the files found compared with the ledger (`None` where Redshift's COPY read every
    /// object under the prefixes, without a ledger plan).
    pub changes: Option<FileChanges>,
    /// The tables this run created because they did not exist yet (a first load).
    pub created: Vec<&'static str>,
    /// The plays in songplays, and how many of them matched a song of the catalogue.
    pub matched_plays: Option<(i64, i64)>,
}

impl EtlReport {
    pub fn rejected(&self) -> u64 {
        self.sources.iter().map(|s| s.rejected).sum()
    }

    /// Files skipped because they could not be read.
    pub fn unreadable(&self) -> impl Iterator<Item = &crate::record::Reject> {
        self.sources.iter().flat_map(|s| &s.unreadable)
    }
}

/// How long a step waits by default for another process that holds the warehouse: long enough
/// for a dashboard's query or a short load to end, short enough for a scheduler to notice.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// Options of one run.
#[derive(Debug, Clone)]
pub struct EtlOptions {
    /// Rejected records tolerated before the run fails.
    pub max_errors: u64,
    /// What a file that cannot be read does to the run.
    pub unreadable: Unreadable,
    /// How long to wait for another load to release the warehouse; zero fails at once.
    pub lock_timeout: Duration,
    /// Whether the quality checks run after the transform (see [`crate::checks`]).
    pub checks: bool,
    /// Whether every file is read again and the star schema rebuilt, whatever the ledger says.
    pub full_refresh: bool,
}

impl Default for EtlOptions {
    fn default() -> Self {
        EtlOptions {
            max_errors: 0,
            unreadable: Unreadable::Fail,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            checks: true,
            full_refresh: false,
        }
    }
}

/// Fails with a hint when `create_tables` has not been run: when any of `tables` is missing
/// (a load needs [`ALL_TABLES`]; `analysis` only the star schema, so a warehouse made by an
/// earlier release, without the ledger, still answers).
pub fn ensure_tables_exist(warehouse: &mut dyn Warehouse, tables: &[&Table]) -> Result<()> {
    let found = warehouse.query(&sql::existing_tables(tables))?;
    let found: Vec<String> = found.rows.iter().map(|r| r[0].to_string()).collect();
    let missing: Vec<&str> = tables
        .iter()
        .map(|t| t.name)
        .filter(|name| !found.iter().any(|f| f == name))
        .collect();
    if !missing.is_empty() {
        bail!(
            "{} lacks {} {}: run etl first (its first run creates them)",
            warehouse.describe(),
            if missing.len() == 1 {
                "the table"
            } else {
                "the tables"
            },
            missing.join(", ")
        );
    }
    Ok(())
}

/// The line a run starts with, before any work: which sources go into which warehouse;
/// `None` when the sources are not set right (the run then says what is wrong).
pub fn start_line(config: &Config) -> Option<String> {
    let sources = config.engine_sources().ok()?;
    let target = match config.engine() {
        crate::config::EngineChoice::DuckDb => {
            format!("duckdb {}", config.warehouse.duckdb_path.display())
        }
        engine => {
            let schema = config
                .warehouse
                .schema
                .as_ref()
                .map_or(String::new(), |s| format!(", schema {s}"));
            format!(
                "{} {}:{}/{}{schema}",
                engine.name(),
                config.cluster.host,
                config.cluster.db_port,
                config.cluster.db_name
            )
        }
    };
    Some(crate::record::escape_controls(&format!(
        "etl: [{}] SONG_DATA = {}, LOG_DATA = {} into {target}",
        sources.section, sources.song_data, sources.log_data
    )))
}

/// What a run would load, for `etl --dry-run`: the ledger's plan (see [`ledger::plan`]) read
/// from the warehouse without changing it, or, when there is no warehouse or no ledger yet, the
/// full refresh its first run is. Redshift without `[S3] MANIFEST_PREFIX` reads everything.
pub fn dry_run_plan(config: &Config, inputs: &Inputs, full_refresh: bool) -> Result<String> {
    let first = |why: &str| {
        ledger::Plan {
            mode: LoadMode::FullRefresh(why.to_string()),
            ..ledger::Plan::default()
        }
        .describe(0)
    };
    if config.engine().is_redshift() && config.manifest_prefix()?.is_none() {
        return Ok(first(
            "Redshift reads only the new files through a manifest of them, which needs [S3] \
             MANIFEST_PREFIX: set it for incremental loads",
        ));
    }
    if config.engine() == crate::config::EngineChoice::DuckDb
        && !config.warehouse.duckdb_path.exists()
    {
        return Ok(first("no warehouse yet: the first run creates it"));
    }
    let mut warehouse = crate::warehouse::open_read_only(config, DEFAULT_LOCK_TIMEOUT)?;
    let states = crate::ownership::inspect(warehouse.as_mut(), &[&LOADED_FILES])?;
    if states[0].ownership == crate::ownership::Ownership::Missing {
        return Ok(first("no ledger yet: the first run creates the tables"));
    }
    let plan = ledger::plan(warehouse.as_mut(), inputs, full_refresh)?;
    Ok(plan.describe(10))
}

/// Runs the whole job against `warehouse`.
pub fn run(
    config: &Config,
    warehouse: &mut dyn Warehouse,
    options: &EtlOptions,
    progress: &Progress,
) -> Result<EtlReport> {
    let mut phases = Vec::new();
    let clock = Instant::now();
    let created = crate::ownership::prepare_for_load(warehouse, &ALL_TABLES)?;
    if warehouse.stages_from_s3() && !warehouse.prints_only() {
        crate::warehouse::s3_copy::check_copy_settings(config, options.max_errors)?;
    }
    let inputs = match ledgered_sources(config, warehouse)? {
        Some(sources) => {
            let inputs = discover_inputs(config, &sources, progress)?;
            phases.push(("discover", clock.elapsed()));
            Some(inputs)
        }
        None => None,
    };

    warehouse.begin()?;
    let lock_clock = Instant::now();
    if let Err(error) = warehouse.lock_for_load(options.lock_timeout) {
        let _ = warehouse.rollback();
        // Only a wait that ran out is another load's doing; a lock refused at once (no such
        // table, no permission, a lost connection) says what it is.
        let context = if crate::warehouse::is_lock_wait(&error) {
            crate::warehouse::held_by_another_load(&warehouse.describe(), lock_clock.elapsed())
        } else {
            format!(
                "cannot lock {} for the load, and not because another load holds it: check \
                 that its tables exist (create_tables makes them) and that [CLUSTER] DB_USER may \
                 lock them",
                warehouse.describe()
            )
        };
        return Err(error.context(context));
    }
    let outcome = stage_and_transform(
        warehouse,
        config,
        inputs.as_ref(),
        options,
        progress,
        phases,
    );
    let mut report = match outcome {
        Ok(report) => report,
        Err(error) => {
            if let Err(rollback) = warehouse.rollback() {
                tracing::error!("rollback failed: {rollback:#}");
            }
            return Err(error);
        }
    };
    let clock = Instant::now();
    if let Err(error) = warehouse.commit() {
        if warehouse.commit_outcome_unknown(&error) {
            return Err(error.context(
                "the connection was lost during COMMIT, so whether the server kept this run's \
                 load is not known (it may have committed it). Running etl again is safe either \
                 way: the ledger commits with the load, so the next run loads exactly what is \
                 not in the warehouse yet",
            ));
        }
        return Err(error.context("commit failed; nothing of this run was kept"));
    }
    report.phases.push(("commit", clock.elapsed()));
    report.created = created;
    report.peak_memory = crate::stats::peak_memory_bytes();
    Ok(report)
}

/// The sources a run lists and plans against the ledger (see [`ledger::plan`]): the local
/// engines read the files the tool finds under [`Config::sources`]. Redshift's COPY reads
/// `[S3]` itself; with `[S3] MANIFEST_PREFIX` the tool lists `[S3]` too, and COPY reads exactly
/// the files the plan chose through a manifest of them, so that the ledger holds exactly what
/// staging holds ("a manifest ... loads all of the required files, and only the required
/// files": https://docs.aws.amazon.com/redshift/latest/dg/loading-data-files-using-manifest.html).
/// Without it (or when the SQL is only printed), `None`: COPY reads every `.json` object under
/// the prefixes, and every run is a full refresh.
fn ledgered_sources(config: &Config, warehouse: &dyn Warehouse) -> Result<Option<Sources>> {
    if !warehouse.stages_from_s3() {
        return Ok(Some(config.sources()?));
    }
    if warehouse.prints_only() || config.manifest_prefix()?.is_none() {
        return Ok(None);
    }
    Ok(Some(config.s3_sources()?))
}

/// Why a run without a ledger plan (see [`ledgered_sources`]) reads everything.
fn unplanned_reason(warehouse: &dyn Warehouse) -> String {
    if warehouse.prints_only() {
        "--print-sql shows a full load".into()
    } else {
        "Redshift reads only the new files through a manifest of them, which needs [S3] \
         MANIFEST_PREFIX: set it for incremental loads"
            .into()
    }
}

/// Finds the files of both sources and reads the JSONPaths file: everything a load needs
/// before it touches the warehouse (and all `etl --dry-run` does). `sources` is
/// [`Config::sources`] for the local engines, [`Config::s3_sources`] for Redshift.
pub fn discover_inputs(config: &Config, sources: &Sources, progress: &Progress) -> Result<Inputs> {
    let in_s3 = [&sources.song_data, &sources.log_data, &sources.log_jsonpath]
        .iter()
        .any(|l| matches!(l, Location::S3 { .. }));
    let store = if in_s3 {
        Some(S3Store::connect_as(&config.s3, &config.aws)?)
    } else {
        None
    };
    let section = sources.section;
    let columns = STAGING_EVENTS.columns.len();
    let mapping = match &sources.log_jsonpath {
        Location::File(path) => JsonPaths::load(path, columns)?,
        location @ Location::S3 { bucket, key } => {
            let store = store.as_ref().expect("an S3 client exists for S3 sources");
            let bytes = store.get(bucket, key).map_err(|e| {
                // A missing object is a wrong setting; a failed request says what to check.
                if e.starts_with("the object was deleted") {
                    anyhow!(
                        "[{section}] LOG_JSONPATH = {location}: no such object: point it at the \
                         JSONPaths file"
                    )
                } else {
                    anyhow!("[{section}] LOG_JSONPATH = {location}: {e}")
                }
            })?;
            JsonPaths::parse(&bytes, columns)
                .with_context(|| format!("[{section}] LOG_JSONPATH = {location}"))?
        }
    };
    let found = progress.counter("discover");
    found.set_message(".json files found");
    let mut songs = discover(
        &sources.song_data,
        &format!("[{section}] SONG_DATA"),
        store.as_ref(),
        &found,
    )?;
    let mut logs = discover(
        &sources.log_data,
        &format!("[{section}] LOG_DATA"),
        store.as_ref(),
        &found,
    )?;
    found.finish_and_clear();
    // The JSONPaths file describes the logs; where it lies under a data prefix it is not data
    // (Redshift's COPY leaves it out the same way, see warehouse::s3_copy).
    for discovered in [&mut songs, &mut logs] {
        discovered
            .files
            .retain(|file| file.location != sources.log_jsonpath);
    }
    Ok(Inputs {
        songs,
        logs,
        mapping,
        // Named the same from any working directory (the ledger keeps it).
        mapping_file: match &sources.log_jsonpath {
            Location::File(path) => std::fs::canonicalize(path)
                .unwrap_or_else(|_| path.clone())
                .display()
                .to_string(),
            location => location.to_string(),
        },
    })
}

/// Everything between BEGIN and COMMIT; an error here means the caller rolls back. Without
/// `inputs` the warehouse stages from `[S3]` itself, and every run is a full refresh.
fn stage_and_transform(
    warehouse: &mut dyn Warehouse,
    config: &Config,
    inputs: Option<&Inputs>,
    options: &EtlOptions,
    progress: &Progress,
    mut phases: Vec<(&'static str, Duration)>,
) -> Result<EtlReport> {
    let clock = Instant::now();
    let started = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let plan = match inputs {
        Some(inputs) => Some(ledger::plan(warehouse, inputs, options.full_refresh)?),
        None => None,
    };
    // Reading the ledger, and hashing the files whose time alone changed.
    if plan.is_some() {
        phases.push(("plan", clock.elapsed()));
    }
    let clock = Instant::now();
    let mode = plan.as_ref().map_or_else(
        || LoadMode::FullRefresh(unplanned_reason(warehouse)),
        |p| p.mode.clone(),
    );
    let changes = plan.as_ref().map(|p| p.changes.clone());
    if let Some(plan) = &plan {
        ledger::apply_renames(warehouse, plan)?;
    }
    if mode == LoadMode::NothingNew {
        let tables = count_tables(warehouse)?;
        return Ok(EtlReport {
            warehouse: warehouse.describe(),
            sources: Vec::new(),
            tables,
            phases,
            peak_memory: None,
            checks: Vec::new(),
            mode,
            changes,
            created: Vec::new(),
            matched_plays: matched_plays(warehouse)?,
        });
    }
    let incremental = mode == LoadMode::Incremental;
    // A full refresh empties staging and the ledger; an incremental load adds to them.
    let (song_target, log_target): (&'static Table, &'static Table) = if incremental {
        (&INCOMING_SONGS, &INCOMING_EVENTS)
    } else {
        (&STAGING_SONGS, &STAGING_EVENTS)
    };
    let emptied: &[&Table] = if incremental {
        &[&INCOMING_EVENTS, &INCOMING_SONGS]
    } else {
        &[
            &STAGING_EVENTS,
            &STAGING_SONGS,
            &INCOMING_EVENTS,
            &INCOMING_SONGS,
            &LOAD_ERRORS,
            &LOADED_FILES,
        ]
    };
    for table in emptied {
        warehouse.execute(&sql::empty_table(warehouse.dialect(), table))?;
    }
    if incremental {
        // Files that could not be read are never in the ledger, so every run tries them
        // again: their old entries go, and the ones still unreadable come back.
        warehouse.execute(&sql::forget_unreadable_files())?;
    }
    let errors_before = if incremental {
        warehouse
            .query(&sql::count_rows(&LOAD_ERRORS))?
            .expect_int("the count of load_errors")?
    } else {
        0
    };
    let stats = match (inputs, &plan) {
        (Some(inputs), Some(plan)) => {
            let targets = [song_target, log_target];
            let stats = if warehouse.stages_from_s3() {
                let load = S3Load {
                    max_errors: options.max_errors,
                    targets,
                    files: Some([plan.songs.as_slice(), plan.logs.as_slice()]),
                };
                warehouse.stage_from_s3(config, &load, progress)?
            } else {
                stage_files(warehouse, inputs, plan, targets, options, progress)?
            };
            record_ledger(warehouse, inputs, plan, &stats, &started)?;
            stats
        }
        _ => warehouse.stage_from_s3(config, &S3Load::everything(options.max_errors), progress)?,
    };
    phases.push(("load", clock.elapsed()));
    fail_over_max_errors(&stats, options.max_errors)?;
    reconcile_staged(warehouse, &stats, [song_target, log_target], errors_before)?;

    let clock = Instant::now();
    let catalogue_changed = stats
        .iter()
        .any(|s| s.source == SourceKind::Song.name() && s.staged > 0);
    if incremental {
        for (staging, incoming) in [
            (&STAGING_SONGS, &INCOMING_SONGS),
            (&STAGING_EVENTS, &INCOMING_EVENTS),
        ] {
            warehouse.execute(&sql::append_all(staging, incoming))?;
        }
    }
    for statement in sql::prepare_transform(warehouse.dialect(), incremental) {
        warehouse.execute(&statement)?;
    }
    let merged = incremental && !catalogue_changed;
    if merged {
        merge(warehouse, progress)?;
    } else {
        // New songs can change which song any play matched: everything is transformed again,
        // from staging (no file is read again).
        transform(warehouse, progress)?;
    }
    phases.push(("transform", clock.elapsed()));

    let clock = Instant::now();
    let tables = count_tables(warehouse)?;
    // After a merge the checks read what it changed; a transform changed everything.
    let scope = if merged {
        CheckScope::MergedRows
    } else {
        CheckScope::Everything
    };
    let checks = if options.checks {
        quality_checks(warehouse, scope, progress)?
    } else {
        Vec::new()
    };
    if merged {
        warehouse.execute(sql::END_MERGE)?;
    }
    phases.push(("check", clock.elapsed()));

    Ok(EtlReport {
        warehouse: warehouse.describe(),
        sources: stats,
        tables,
        phases,
        peak_memory: None,
        checks,
        mode,
        changes,
        created: Vec::new(),
        matched_plays: matched_plays(warehouse)?,
    })
}

/// The plays in songplays and how many matched a song (see [`EtlReport::matched_plays`]).
fn matched_plays(warehouse: &mut dyn Warehouse) -> Result<Option<(i64, i64)>> {
    let result = warehouse.query(sql::MATCHED_PLAYS)?;
    Ok(match result.rows.first().map(Vec::as_slice) {
        Some([Cell::Int(plays), Cell::Int(matched)]) => Some((*plays, *matched)),
        _ => None,
    })
}

fn fail_over_max_errors(stats: &[SourceStats], max_errors: u64) -> Result<()> {
    let rejected: u64 = stats.iter().map(|s| s.rejected).sum();
    if rejected <= max_errors {
        return Ok(());
    }
    let shown: Vec<String> = stats
        .iter()
        .flat_map(|s| &s.first_rejects)
        .map(|r| format!("  {}", r.one_line()))
        .collect();
    // Every record of a source rejected, and all for a missing value: the classic mistake is
    // SONG_DATA and LOG_DATA pointing at each other's files.
    let swapped: Vec<&str> = stats
        .iter()
        .filter(|s| {
            s.records > 0
                && s.staged == 0
                && !s.first_rejects.is_empty()
                && s.first_rejects
                    .iter()
                    .all(|r| r.reason.contains("is missing"))
        })
        .map(|s| s.source)
        .collect();
    let hint = if swapped.is_empty() {
        String::new()
    } else {
        format!(
            "\nEvery record of {} was rejected for a missing value: are SONG_DATA and LOG_DATA \
             swapped, or does the source hold other files?",
            swapped.join(" and ")
        )
    };
    bail!(
        "{} rejected, more than [WAREHOUSE] MAX_ERRORS = {max_errors}; nothing \
         was committed and the warehouse is as it was. First rejects:\n{}{hint}\nFix the \
         input, or raise MAX_ERRORS (or pass --max-errors) to load the rest and keep the \
         rejects in load_errors",
        crate::words::counted(rejected, "record", "records"),
        shown.join("\n")
    )
}

/// Replaces the star schema with the transform of staging.
fn transform(warehouse: &mut dyn Warehouse, progress: &Progress) -> Result<()> {
    for table in STAR_TABLES {
        warehouse.execute(&sql::empty_table(warehouse.dialect(), table))?;
    }
    let dialect = warehouse.dialect();
    let transform = sql::transform(dialect);
    let bar = progress.items("transform", transform.len() as u64);
    for (table, statement) in &transform {
        bar.set_message(table.name);
        tracing::info!(table = table.name, "transforming");
        let keys = sql::keys_rebuilt_around_insert(dialect, table);
        if let Some(keys) = &keys {
            warehouse.execute(&keys.drop)?;
        }
        // Built once after the insert, as the keys are (a warehouse made before the index was
        // kept gets it here).
        let indexes = sql::secondary_indexes(table, dialect);
        for index in &indexes {
            warehouse.execute(&sql::drop_index(index))?;
        }
        warehouse
            .execute(statement)
            .with_context(|| format!("transform into {} failed", table.name))?;
        for index in &indexes {
            warehouse.execute(&sql::create_index(index))?;
        }
        if let Some(keys) = &keys {
            warehouse.execute(&keys.add).with_context(|| {
                format!(
                    "check failed: a primary or unique key of {} is held by more than one row; \
                     nothing was committed",
                    table.name
                )
            })?;
        }
        bar.inc(1);
    }
    for statement in sql::after_transform(dialect) {
        warehouse.execute(&statement)?;
    }
    bar.finish_and_clear();
    Ok(())
}

/// Reads the files `plan` chose into `targets` (songs, then events) and `load_errors`.
fn stage_files(
    warehouse: &mut dyn Warehouse,
    inputs: &Inputs,
    plan: &ledger::Plan,
    targets: [&Table; 2],
    options: &EtlOptions,
    progress: &Progress,
) -> Result<Vec<SourceStats>> {
    Ok(vec![
        load_source(
            warehouse,
            SourceKind::Song,
            &inputs.songs,
            &plan.songs,
            targets[0],
            None,
            options.unreadable,
            progress,
        )?,
        load_source(
            warehouse,
            SourceKind::Log,
            &inputs.logs,
            &plan.logs,
            targets[1],
            Some(&inputs.mapping),
            options.unreadable,
            progress,
        )?,
    ])
}

/// Enters the files a load read (`stats`: songs, then logs) in the ledger, with the mapping
/// on a full refresh.
fn record_ledger(
    warehouse: &mut dyn Warehouse,
    inputs: &Inputs,
    plan: &ledger::Plan,
    stats: &[SourceStats],
    started: &str,
) -> Result<()> {
    ledger::record(
        warehouse,
        &stats[0],
        &plan.songs,
        &inputs.songs,
        plan,
        started,
    )?;
    ledger::record(
        warehouse,
        &stats[1],
        &plan.logs,
        &inputs.logs,
        plan,
        started,
    )?;
    if plan.mode != LoadMode::Incremental {
        ledger::record_mapping(warehouse, inputs, started)?;
    }
    Ok(())
}

/// Runs the quality checks; any failure fails the run with the checks' report.
fn quality_checks(
    warehouse: &mut dyn Warehouse,
    scope: CheckScope,
    progress: &Progress,
) -> Result<Vec<CheckOutcome>> {
    let bar = progress.items("check", checks::all().len() as u64);
    bar.set_message("quality checks");
    let outcomes = checks::run_counted(warehouse, scope, &bar)?;
    bar.finish_and_clear();
    if let Some(failed) = checks::failure_report(&outcomes) {
        bail!(
            "{failed}\nNothing was committed and the warehouse is as it was. Fix the input, or \
             pass --no-checks to load it anyway"
        );
    }
    Ok(outcomes)
}

/// Merges what `incoming_events` changes into the star schema (see
/// [`sql::merge_incoming_events`]).
fn merge(warehouse: &mut dyn Warehouse, progress: &Progress) -> Result<()> {
    let dialect = warehouse.dialect();
    let steps = sql::merge_incoming_events(dialect);
    let bar = progress.items("merge", steps.len() as u64);
    // Each fact asked once, when the first step that waits on it comes.
    let mut answers: HashMap<&'static str, bool> = HashMap::new();
    // Once merge_from holds the earliest time touched on, the statements read it as a literal
    // (see sql::pin_merge_from_time).
    let mut pin: checks::MergeFromPin = Box::new(|statement: &str| Ok(statement.to_string()));
    for step in steps {
        let runs = match step.when.asks() {
            None => true,
            Some((query, when_above_zero)) => {
                let above_zero = match answers.get(query) {
                    Some(&above_zero) => above_zero,
                    None => {
                        let asked = pin(query)?;
                        *answers
                            .entry(query)
                            .or_insert(counted(warehouse, &asked)? > 0)
                    }
                };
                above_zero == when_above_zero
            }
        };
        if !runs {
            bar.inc(1);
            continue;
        }
        let table = step.table.map_or("bookkeeping", |t| t.name);
        bar.set_message(table);
        tracing::info!(table, "merging");
        warehouse
            .execute(&pin(&step.sql)?)
            .with_context(|| format!("merging the new records into {table} failed"))?;
        if step.sql.starts_with(sql::CREATE_MERGE_FROM) {
            pin = checks::merge_from_pin(warehouse)?;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(())
}

/// The one number `query` answers (a fact the merge asks once: see [`sql::RunWhen`]).
fn counted(warehouse: &mut dyn Warehouse, query: &str) -> Result<i64> {
    warehouse
        .query(query)?
        .expect_int(&format!("the answer of {query}"))
}

/// The rows of each table the summary shows: staging, the ledger, `load_errors` and the star
/// schema.
fn count_tables(warehouse: &mut dyn Warehouse) -> Result<Vec<(&'static str, i64)>> {
    let mut tables = Vec::new();
    for table in ALL_TABLES {
        if [INCOMING_EVENTS.name, INCOMING_SONGS.name].contains(&table.name) {
            continue;
        }
        let count = warehouse
            .query(&sql::count_rows(table))?
            .expect_int(&format!("the count of {}", table.name))?;
        tables.push((table.name, count));
    }
    Ok(tables)
}

/// Checks that the tables this run loaded (`targets`: songs, then events) and `load_errors`
/// hold exactly the records read: records read = staged + rejected, and `load_errors` grew by
/// rejected + unreadable files from `errors_before`.
fn reconcile_staged(
    warehouse: &mut dyn Warehouse,
    stats: &[SourceStats],
    targets: [&Table; 2],
    errors_before: i64,
) -> Result<()> {
    let mut count = |table: &Table| {
        warehouse
            .query(&sql::count_rows(table))?
            .expect_int(&format!("the count of {}", table.name))
    };
    let songs = count(targets[0])?;
    let events = count(targets[1])?;
    let errors = count(&LOAD_ERRORS)?;
    let staged = |kind: SourceKind| {
        stats
            .iter()
            .find(|s| s.source == kind.name())
            .map(|s| s.staged as i64)
    };
    let rejected: u64 = stats
        .iter()
        .map(|s| s.rejected + s.unreadable.len() as u64)
        .sum();
    ensure!(
        Some(songs) == staged(SourceKind::Song)
            && Some(events) == staged(SourceKind::Log)
            && errors == errors_before + rejected as i64,
        "reconciliation failed: {}, {} and load_errors do not hold the {} records read; \
         nothing was committed",
        targets[0].name,
        targets[1].name,
        stats.iter().map(|s| s.records).sum::<u64>()
    );
    Ok(())
}
