//! The `etl` job: stage both sources, transform staging into the star schema, check that every
//! record is accounted for, all in one transaction. If any step fails, or more records are
//! rejected than `[WAREHOUSE] MAX_ERRORS` allows, the transaction is rolled back and the
//! warehouse is exactly as it was before the run.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};

use crate::config::{Config, Location, Sources};
use crate::jsonpaths::JsonPaths;
use crate::load::{load_source, SourceStats, REJECTS_SHOWN};
use crate::parse::SourceKind;
use crate::progress::Progress;
use crate::record::Reject;
use crate::s3::S3Store;
use crate::schema::{ALL_TABLES, LOAD_ERRORS, STAGING_EVENTS, STAGING_SONGS, STAR_TABLES};
use crate::source::{discover, Discovered};
use crate::sql::{self, S3Copy};
use crate::warehouse::{Cell, Warehouse};

/// What an `etl` run did, for the summary.
#[derive(Debug, Clone)]
pub struct EtlReport {
    pub warehouse: String,
    pub sources: Vec<SourceStats>,
    /// Rows per table after the run.
    pub tables: Vec<(&'static str, i64)>,
    /// Wall time per phase, in order.
    pub phases: Vec<(&'static str, Duration)>,
}

impl EtlReport {
    pub fn rejected(&self) -> u64 {
        self.sources.iter().map(|s| s.rejected).sum()
    }
}

/// Options of one run.
#[derive(Debug, Clone)]
pub struct EtlOptions {
    /// Rejected records tolerated before the run fails.
    pub max_errors: u64,
}

/// Fails with a hint when `create_tables` has not been run.
pub fn ensure_tables_exist(warehouse: &mut dyn Warehouse) -> Result<()> {
    let found = warehouse.query(&sql::existing_tables(&ALL_TABLES))?;
    let found: Vec<String> = found.rows.iter().map(|r| r[0].to_string()).collect();
    let missing: Vec<&str> = ALL_TABLES
        .iter()
        .map(|t| t.name)
        .filter(|name| !found.iter().any(|f| f == name))
        .collect();
    if !missing.is_empty() {
        bail!(
            "{} lacks the table(s) {}: run create_tables first",
            warehouse.describe(),
            missing.join(", ")
        );
    }
    Ok(())
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
    ensure_tables_exist(warehouse)?;
    // Redshift reads the sources itself; the local engines get them from the tool.
    let inputs = if warehouse.stages_from_s3() {
        None
    } else {
        let inputs = discover_inputs(config, &config.sources()?, progress)?;
        phases.push(("discover", clock.elapsed()));
        Some(inputs)
    };

    warehouse.begin()?;
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
    warehouse
        .commit()
        .context("commit failed; nothing of this run was kept")?;
    report.phases.push(("commit", clock.elapsed()));
    Ok(report)
}

/// The sources of one run, found and checked.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub songs: Discovered,
    pub logs: Discovered,
    /// The JSONPaths mapping of log records onto staging columns.
    pub mapping: JsonPaths,
}

/// Finds the files of both sources and reads the JSONPaths file: everything a load needs
/// before it touches the warehouse (and all `etl --dry-run` does). `sources` is
/// [`Config::sources`] for the local engines, [`Config::s3_sources`] for Redshift.
pub fn discover_inputs(config: &Config, sources: &Sources, progress: &Progress) -> Result<Inputs> {
    let in_s3 = [&sources.song_data, &sources.log_data, &sources.log_jsonpath]
        .iter()
        .any(|l| matches!(l, Location::S3 { .. }));
    let store = if in_s3 {
        Some(S3Store::connect(&config.s3)?)
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
                anyhow!(
                    "[{section}] LOG_JSONPATH = {location}: {e}: point it at the JSONPaths file"
                )
            })?;
            JsonPaths::parse(&bytes, columns)
                .with_context(|| format!("[{section}] LOG_JSONPATH = {location}"))?
        }
    };
    let found = progress.spinner("discover");
    found.set_message(".json files found");
    let songs = discover(
        &sources.song_data,
        &format!("[{section}] SONG_DATA"),
        store.as_ref(),
        &found,
    )?;
    let logs = discover(
        &sources.log_data,
        &format!("[{section}] LOG_DATA"),
        store.as_ref(),
        &found,
    )?;
    found.finish_and_clear();
    Ok(Inputs {
        songs,
        logs,
        mapping,
    })
}

/// Everything between BEGIN and COMMIT; an error here means the caller rolls back. Without
/// `inputs` the warehouse stages from `[S3]` itself.
fn stage_and_transform(
    warehouse: &mut dyn Warehouse,
    config: &Config,
    inputs: Option<&Inputs>,
    options: &EtlOptions,
    progress: &Progress,
    mut phases: Vec<(&'static str, Duration)>,
) -> Result<EtlReport> {
    let clock = Instant::now();
    let stats = match inputs {
        Some(inputs) => stage(warehouse, inputs, progress)?,
        None => stage_from_s3(warehouse, config, options.max_errors, progress)?,
    };
    phases.push(("load", clock.elapsed()));
    fail_over_max_errors(&stats, options.max_errors)?;

    let clock = Instant::now();
    transform(warehouse, progress)?;
    phases.push(("transform", clock.elapsed()));

    let clock = Instant::now();
    check_keys(warehouse)?;
    let tables = count_and_reconcile(warehouse, &stats)?;
    phases.push(("check", clock.elapsed()));

    Ok(EtlReport {
        warehouse: warehouse.describe(),
        sources: stats,
        tables,
        phases,
    })
}

/// Replaces staging and `load_errors` with the records of both sources.
fn stage(
    warehouse: &mut dyn Warehouse,
    inputs: &Inputs,
    progress: &Progress,
) -> Result<Vec<SourceStats>> {
    for table in [&STAGING_EVENTS, &STAGING_SONGS, &LOAD_ERRORS] {
        warehouse.execute(&sql::delete_all(table))?;
    }
    Ok(vec![
        load_source(warehouse, SourceKind::Song, &inputs.songs, None, progress)?,
        load_source(
            warehouse,
            SourceKind::Log,
            &inputs.logs,
            Some(&inputs.mapping),
            progress,
        )?,
    ])
}

/// Redshift's own COPY of both sources from `[S3]` with the role of `[IAM_ROLE]`. The records
/// it skipped (at most MAXERROR per source) are read back from its load-error table into
/// `load_errors`; a COPY that fails shows those rows.
fn stage_from_s3(
    warehouse: &mut dyn Warehouse,
    config: &Config,
    max_errors: u64,
    progress: &Progress,
) -> Result<Vec<SourceStats>> {
    let role = config.iam_role_arn.as_str();
    if role.is_empty() {
        bail!(
            "{}: [IAM_ROLE] ARN is empty: Redshift's COPY needs a role it can assume to read \
             the [S3] bucket: run iac_create, or set ARN to such a role",
            config.path.display()
        );
    }
    for table in [&STAGING_EVENTS, &STAGING_SONGS, &LOAD_ERRORS] {
        warehouse.execute(&sql::delete_all(table))?;
    }
    let s3 = &config.s3;
    let serverless = config.cluster.is_serverless();
    let sources = [
        (
            SourceKind::Song,
            "SONG_DATA",
            &s3.song_data,
            "auto ignorecase",
        ),
        (
            SourceKind::Log,
            "LOG_DATA",
            &s3.log_data,
            s3.log_jsonpath.as_str(),
        ),
    ];
    let bar = progress.items("copy", sources.len() as u64);
    let mut all = Vec::new();
    for (kind, key, from, json) in sources {
        if !from.starts_with("s3://") {
            bail!(
                "{}: [S3] {key} = {from:?} is not an s3:// URI: Redshift loads staging from S3",
                config.path.display()
            );
        }
        if kind == SourceKind::Log && !json.starts_with("s3://") {
            bail!(
                "{}: [S3] LOG_JSONPATH = {json:?} is not an s3:// URI: Redshift reads the \
                 JSONPaths file from S3",
                config.path.display()
            );
        }
        let copy = sql::copy_from_s3(&S3Copy {
            table: kind.table(),
            from,
            iam_role: role,
            json,
            region: &s3.region,
            max_errors,
        })
        .map_err(|e| {
            anyhow!(
                "{}: a value of [S3] or [IAM_ROLE] cannot be used: {e}",
                config.path.display()
            )
        })?;
        bar.set_message(kind.table().name);
        tracing::info!(table = kind.table().name, %from, "Redshift COPY");
        if let Err(error) = warehouse.execute(&copy) {
            // The failed COPY aborted the transaction; its error rows outlive it.
            let _ = warehouse.rollback();
            let shown = match redshift_rejects(warehouse, kind, serverless) {
                Ok(rejects) if !rejects.is_empty() => rejects
                    .iter()
                    .take(20)
                    .map(|r| format!("  {}:{}: {}", r.file, r.line.unwrap_or(0), r.reason))
                    .collect::<Vec<_>>()
                    .join("\n"),
                _ => format!(
                    "  (no rows found; see {} for this session)",
                    if serverless {
                        "sys_load_error_detail"
                    } else {
                        "stl_load_errors"
                    }
                ),
            };
            return Err(error.context(format!(
                "Redshift's COPY of [S3] {key} = {from} into {} failed; nothing was committed. \
                 Load errors:\n{shown}\nFix the input, or raise [WAREHOUSE] MAX_ERRORS (or pass \
                 --max-errors) to skip bad records and keep them in load_errors",
                kind.table().name
            )));
        }
        let staged = warehouse
            .query(sql::REDSHIFT_LAST_COPY_COUNT)?
            .single_int()
            .unwrap_or_default() as u64;
        let rejects = redshift_rejects(warehouse, kind, serverless)?;
        if !rejects.is_empty() {
            warehouse.execute(&sql::insert_rejects_redshift(&rejects))?;
        }
        all.push(SourceStats {
            source: kind.name(),
            files: 0,
            bytes: 0,
            records: staged + rejects.len() as u64,
            staged,
            rejected: rejects.len() as u64,
            first_rejects: rejects.into_iter().take(REJECTS_SHOWN).collect(),
            read_by_warehouse: true,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(all)
}

/// The records Redshift's last COPY in this session skipped, as rejects.
fn redshift_rejects(
    warehouse: &mut dyn Warehouse,
    kind: SourceKind,
    serverless: bool,
) -> Result<Vec<Reject>> {
    let result = warehouse.query(sql::redshift_load_errors(serverless))?;
    // Columns: file, line, column, reason, raw line (see the query).
    Ok(result
        .rows
        .iter()
        .map(|row| {
            let text = |index: usize| row.get(index).map(Cell::to_string).unwrap_or_default();
            Reject {
                source: kind.name(),
                file: text(0),
                line: match row.get(1) {
                    Some(Cell::Int(line)) => u64::try_from(*line).ok(),
                    _ => None,
                },
                reason: format!("{}: {}", text(2), text(3)),
                raw_text: text(4),
            }
        })
        .collect())
}

fn fail_over_max_errors(stats: &[SourceStats], max_errors: u64) -> Result<()> {
    let rejected: u64 = stats.iter().map(|s| s.rejected).sum();
    if rejected <= max_errors {
        return Ok(());
    }
    let shown: Vec<String> = stats
        .iter()
        .flat_map(|s| &s.first_rejects)
        .map(|r| match r.line {
            Some(line) => format!("  {}:{line}: {}", r.file, r.reason),
            None => format!("  {}: {}", r.file, r.reason),
        })
        .collect();
    bail!(
        "{rejected} record(s) rejected, more than [WAREHOUSE] MAX_ERRORS = {max_errors}; nothing \
         was committed and the warehouse is as it was. First rejects:\n{}\nFix the input, or \
         raise MAX_ERRORS (or pass --max-errors) to load the rest and keep the rejects in \
         load_errors",
        shown.join("\n")
    )
}

/// Replaces the star schema with the transform of staging.
fn transform(warehouse: &mut dyn Warehouse, progress: &Progress) -> Result<()> {
    for table in STAR_TABLES {
        warehouse.execute(&sql::delete_all(table))?;
    }
    let transform = sql::transform(warehouse.dialect());
    let bar = progress.items("transform", transform.len() as u64);
    for (table, statement) in &transform {
        bar.set_message(table.name);
        tracing::info!(table = table.name, "transforming");
        warehouse
            .execute(statement)
            .with_context(|| format!("transform into {} failed", table.name))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(())
}

/// Fails when a primary or unique key of the star schema is held by more than one row.
fn check_keys(warehouse: &mut dyn Warehouse) -> Result<()> {
    for table in STAR_TABLES {
        for (key, query) in sql::duplicate_keys(table) {
            let duplicates = warehouse.query(&query)?.single_int().unwrap_or_default();
            ensure!(
                duplicates == 0,
                "check failed: {duplicates} value(s) of {}({}) are held by more than one row; \
                 nothing was committed",
                table.name,
                key.join(", ")
            );
        }
    }
    Ok(())
}

/// Counts every table and checks that staging and `load_errors` hold exactly the records
/// read: records read = staged + rejected.
fn count_and_reconcile(
    warehouse: &mut dyn Warehouse,
    stats: &[SourceStats],
) -> Result<Vec<(&'static str, i64)>> {
    let mut tables = Vec::new();
    for table in ALL_TABLES {
        let count = warehouse
            .query(&sql::count_rows(table))?
            .single_int()
            .unwrap_or_default();
        tables.push((table.name, count));
    }
    let rows_of = |name: &str| tables.iter().find(|(t, _)| *t == name).map(|(_, n)| *n);
    let staged = |kind: SourceKind| {
        stats
            .iter()
            .find(|s| s.source == kind.name())
            .map(|s| s.staged as i64)
    };
    let rejected: u64 = stats.iter().map(|s| s.rejected).sum();
    ensure!(
        rows_of(STAGING_SONGS.name) == staged(SourceKind::Song)
            && rows_of(STAGING_EVENTS.name) == staged(SourceKind::Log)
            && rows_of(LOAD_ERRORS.name) == Some(rejected as i64),
        "reconciliation failed: staging tables and load_errors do not hold the {} records \
         read; nothing was committed",
        stats.iter().map(|s| s.records).sum::<u64>()
    );
    Ok(tables)
}
