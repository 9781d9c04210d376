//! Data-quality checks of the star schema, as dbt's tests are for a dbt project: keys not null
//! and unique, every reference found, values among those accepted, and every play of staging
//! in `songplays` once. `etl` runs them inside its transaction after the transform, so a load
//! that breaks one commits nothing; the `check` binary runs them alone on a warehouse as it is.
//!
//! The rules themselves are in [`crate::schema::rules`]. Each check is one query returning two
//! numbers (rows examined, rows failing), written for every dialect in
//! [`crate::sql::check_counts`], except that the checks of each row on its own (not null,
//! accepted values) share one scan of their table ([`crate::sql::row_check_counts`]); a failed check is shown with up to [`SAMPLE_ROWS`] of its
//! offending rows ([`crate::sql::offending_rows`]).
//!
//! After an incremental merge the checks read what the merge changed
//! ([`CheckScope::MergedRows`], the rows [`crate::sql::checked_rows`] gives), so a new day
//! costs what its rows cost and not the whole star schema again; the unique keys of songplays
//! stay global, and the reconciliation counts what the merge added. On DuckDB and PostgreSQL
//! their queries read the merge's earliest time as a literal (see
//! [`crate::sql::pin_merge_from_time`]). The `check` binary reads everything.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::schema::{Table, ARTISTS, SONGPLAYS, SONGS, STAGING_EVENTS, TIME, USERS};
use crate::sql::{self, CheckedRows};

pub use crate::schema::rules::{all, Accepted, Check};
pub use crate::sql::{CheckScope, SAMPLE_ROWS};
use crate::warehouse::{Cell, QueryResult, Warehouse};

/// The tables the checks read: the star schema and the staged events.
pub static TABLES_READ: [&Table; 6] =
    [&SONGS, &ARTISTS, &USERS, &SONGPLAYS, &TIME, &STAGING_EVENTS];

/// What one check found.
#[derive(Debug, Clone)]
pub struct CheckOutcome {
    pub name: String,
    pub examined: i64,
    pub failures: i64,
    pub elapsed: Duration,
    /// Which rows it read.
    pub rows: RowsRead,
    /// Up to [`SAMPLE_ROWS`] offending rows, when it failed.
    pub sample: QueryResult,
}

/// Which rows of its table a check read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowsRead {
    /// Every row.
    All,
    /// The rows the load changed (after an incremental merge).
    Changed,
    /// None: the load changed nothing the check reads, and it held after the last load.
    NoneChanged,
}

impl RowsRead {
    /// As the summary, the checks table and the JSON documents name it.
    pub fn label(self) -> &'static str {
        match self {
            RowsRead::All => "all",
            RowsRead::Changed => "changed",
            RowsRead::NoneChanged => "unchanged",
        }
    }
}

impl CheckOutcome {
    pub fn passed(&self) -> bool {
        self.failures == 0
    }

    /// Whether the check read any row (see [`RowsRead::NoneChanged`]).
    pub fn ran(&self) -> bool {
        self.rows != RowsRead::NoneChanged
    }
}

/// Runs every check against every row of `warehouse`, in its open transaction if there is one.
pub fn run(warehouse: &mut dyn Warehouse) -> Result<Vec<CheckOutcome>> {
    run_counted(
        warehouse,
        CheckScope::Everything,
        &indicatif::ProgressBar::hidden(),
    )
}

/// Runs every check on the rows `scope` says, ticking `done` once per check.
pub fn run_counted(
    warehouse: &mut dyn Warehouse,
    scope: CheckScope,
    done: &indicatif::ProgressBar,
) -> Result<Vec<CheckOutcome>> {
    let dialect = warehouse.dialect();
    for statement in sql::prepare_checks(dialect, scope) {
        warehouse.execute(&statement)?;
    }
    // After a merge, the earliest time it touched on as a literal (see sql::pin_merge_from_time).
    let pin: MergeFromPin = match scope {
        CheckScope::MergedRows => merge_from_pin(warehouse)?,
        CheckScope::Everything => Box::new(|statement: &str| Ok(statement.to_string())),
    };
    let checks = all();
    let shared = row_checks(warehouse, &checks, scope, pin.as_ref(), done)?;
    let mut outcomes = Vec::new();
    for (index, check) in checks.iter().enumerate() {
        let clock = Instant::now();
        let name = check.name();
        let rows = match sql::checked_rows(check, scope) {
            CheckedRows::All => RowsRead::All,
            CheckedRows::Changed(_) | CheckedRows::PlaysAdded => RowsRead::Changed,
            CheckedRows::Unchanged => RowsRead::NoneChanged,
        };
        if rows == RowsRead::NoneChanged {
            tracing::info!(check = %name, "not run: nothing it reads changed");
            done.inc(1);
            outcomes.push(CheckOutcome {
                name,
                examined: 0,
                failures: 0,
                elapsed: Duration::ZERO,
                rows,
                sample: QueryResult::default(),
            });
            continue;
        }
        let (examined, failures, counted_in) = match shared.get(&index) {
            Some(&counts) => counts,
            None => {
                tracing::info!(check = %name, rows = rows.label(), "checking");
                let counts = warehouse
                    .query(&pin(&sql::check_counts(check, dialect, scope))?)
                    .with_context(|| format!("the check {name} could not run"))?;
                let (examined, failures) = two_counts(&counts).with_context(|| {
                    format!("the check {name} returned {:?}", counts.rows.first())
                })?;
                done.inc(1);
                (examined, failures, Duration::ZERO)
            }
        };
        let sample = if failures > 0 {
            warehouse
                .query(&pin(&sql::offending_rows(check, dialect, scope))?)
                .with_context(|| format!("the offending rows of {name} could not be read"))?
        } else {
            QueryResult::default()
        };
        outcomes.push(CheckOutcome {
            name,
            examined,
            failures,
            elapsed: counted_in + clock.elapsed(),
            rows,
            sample,
        });
    }
    Ok(outcomes)
}

/// Rewrites a statement run after a merge's `merge_from` exists (see
/// [`sql::pin_merge_from_time`]).
pub type MergeFromPin = Box<dyn Fn(&str) -> Result<String>>;

/// Reads the earliest time the merge touched on, while `merge_from` exists, and returns what
/// writes it into the statements that follow, as a literal, on a dialect that
/// [`sql::pins_merge_from_time`]; on the others, and where statements are only printed, the
/// statements as they are.
pub fn merge_from_pin(warehouse: &mut dyn Warehouse) -> Result<MergeFromPin> {
    let dialect = warehouse.dialect();
    if !sql::pins_merge_from_time(dialect) || warehouse.prints_only() {
        return Ok(Box::new(|statement: &str| Ok(statement.to_string())));
    }
    let result = warehouse.query(sql::MERGE_FROM_TIME_TEXT)?;
    let time = match result.rows.as_slice() {
        [row] => match row.first() {
            Some(Cell::Null) => None,
            Some(Cell::Text(time)) => Some(time.clone()),
            other => bail!("merge_from's start time read as {other:?}, not as text"),
        },
        rows => bail!("merge_from holds {} rows, not one", rows.len()),
    };
    Ok(Box::new(move |statement: &str| {
        sql::pin_merge_from_time(statement, dialect, time.as_deref()).map_err(|e| anyhow!(e))
    }))
}

/// The row checks ([`sql::is_row_check`]) of `checks` by table, in the order their tables
/// first appear, each with its index in `checks`: what [`sql::row_check_counts`] takes.
pub fn row_checks_by_table(checks: &[Check]) -> Vec<(&'static Table, Vec<(usize, &Check)>)> {
    let mut tables: Vec<(&'static Table, Vec<(usize, &Check)>)> = Vec::new();
    for (index, check) in checks
        .iter()
        .enumerate()
        .filter(|(_, c)| sql::is_row_check(c))
    {
        match tables
            .iter_mut()
            .find(|(t, _)| t.name == check.table().name)
        {
            Some((_, members)) => members.push((index, check)),
            None => tables.push((check.table(), vec![(index, check)])),
        }
    }
    tables
}

/// The counts of the row checks ([`sql::is_row_check`]), one query per table for all of its
/// row checks, by the check's index in `checks`: rows examined, rows failing, and the check's
/// share of the query's time (the query's time divided among its checks). None for a table
/// `scope` leaves unread. Each query goes through `pin` first.
fn row_checks(
    warehouse: &mut dyn Warehouse,
    checks: &[Check],
    scope: CheckScope,
    pin: &dyn Fn(&str) -> Result<String>,
    done: &indicatif::ProgressBar,
) -> Result<HashMap<usize, (i64, i64, Duration)>> {
    let dialect = warehouse.dialect();
    let mut counted = HashMap::new();
    for (table, members) in row_checks_by_table(checks) {
        if sql::checked_rows(members[0].1, scope) == CheckedRows::Unchanged {
            continue;
        }
        let names = || {
            let names: Vec<String> = members.iter().map(|(_, c)| c.name()).collect();
            names.join(", ")
        };
        tracing::info!(table = table.name, checks = %names(), "checking rows");
        let clock = Instant::now();
        let of_table: Vec<&Check> = members.iter().map(|&(_, c)| c).collect();
        let result = warehouse
            .query(&pin(&sql::row_check_counts(
                table, &of_table, dialect, scope,
            ))?)
            .with_context(|| format!("the checks {} could not run", names()))?;
        let share = clock.elapsed() / members.len() as u32;
        let row = result.rows.first();
        let int = |at: usize| match row.and_then(|r| r.get(at)) {
            Some(Cell::Int(n)) => Some(*n),
            _ => None,
        };
        let examined =
            int(0).with_context(|| format!("the checks {} returned {row:?}", names()))?;
        for (position, &(index, _)) in members.iter().enumerate() {
            let failures = int(1 + position)
                .with_context(|| format!("the checks {} returned {row:?}", names()))?;
            counted.insert(index, (examined, failures, share));
        }
        done.inc(members.len() as u64);
    }
    Ok(counted)
}

fn two_counts(result: &QueryResult) -> Option<(i64, i64)> {
    match result.rows.first()?.as_slice() {
        [Cell::Int(examined), Cell::Int(failures), ..] => Some((*examined, *failures)),
        _ => None,
    }
}

/// The failed checks as one message: each named, with its offending rows.
pub fn failure_report(outcomes: &[CheckOutcome]) -> Option<String> {
    let failed: Vec<&CheckOutcome> = outcomes.iter().filter(|o| !o.passed()).collect();
    if failed.is_empty() {
        return None;
    }
    let mut out = format!(
        "{} of {} failed:",
        failed.len(),
        crate::words::counted(outcomes.len(), "quality check", "quality checks")
    );
    for outcome in failed {
        out.push_str(&format!(
            "\n  {}: {} of {} fail",
            outcome.name,
            outcome.failures,
            crate::words::counted(outcome.examined, "row", "rows")
        ));
        let shown = outcome.sample.rows.len() as i64;
        for row in &outcome.sample.rows {
            let cells: Vec<String> = outcome
                .sample
                .columns
                .iter()
                .zip(row)
                .map(|(column, cell)| match cell {
                    Cell::Null => format!("{column}=NULL"),
                    cell => format!("{column}={}", shortened(&cell.to_string())),
                })
                .collect();
            out.push_str(&format!("\n    {}", cells.join(", ")));
        }
        if outcome.failures > shown && shown > 0 {
            out.push_str(&format!("\n    ... and {} more", outcome.failures - shown));
        }
    }
    Some(out)
}

/// A value cut to a readable width, control characters escaped.
fn shortened(value: &str) -> String {
    const WIDTH: usize = 40;
    let escaped = crate::record::escape_controls(value);
    match escaped.char_indices().nth(WIDTH) {
        Some((end, _)) => format!("{}...", &escaped[..end]),
        None => escaped,
    }
}
