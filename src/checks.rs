//! Data-quality checks of the star schema, as dbt's tests are for a dbt project: keys not null
//! and unique, every reference found, values among those accepted, and every play of staging
//! in `songplays` once. `etl` runs them inside its transaction after the transform, so a load
//! that breaks one commits nothing; the `check` binary runs them alone on a warehouse as it is.
//!
//! Each check is one query returning two numbers (rows examined, rows failing), written for
//! every dialect in [`crate::sql::check_counts`]; a failed check is shown with up to
//! [`SAMPLE_ROWS`] of its offending rows ([`crate::sql::offending_rows`]).

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::schema::{Table, ARTISTS, SONGPLAYS, SONGS, STAGING_EVENTS, STAR_TABLES, TIME, USERS};
use crate::sql;
use crate::warehouse::{Cell, QueryResult, Warehouse};

/// The tables the checks read: the star schema and the staged events.
pub static TABLES_READ: [&Table; 6] =
    [&SONGS, &ARTISTS, &USERS, &SONGPLAYS, &TIME, &STAGING_EVENTS];

/// Offending rows shown for a failed check.
pub const SAMPLE_ROWS: u32 = 5;

/// What is accepted in a column.
#[derive(Debug, Clone, Copy)]
pub enum Accepted {
    /// One of these texts (NULL is left to the not-null checks, as dbt's `accepted_values`).
    Texts(&'static [&'static str]),
    /// An integer from the first to the second, inclusive.
    Range(i64, i64),
}

/// One data-quality rule.
#[derive(Debug, Clone, Copy)]
pub enum Check {
    /// No row has NULL in the column.
    NotNull {
        table: &'static Table,
        column: &'static str,
    },
    /// No two rows share a value of the key.
    Unique {
        table: &'static Table,
        key: &'static [&'static str],
    },
    /// Every row of `child` whose `columns` are all set finds a row of `parent` with the same
    /// values in the columns of the same names.
    Relationship {
        child: &'static Table,
        columns: &'static [&'static str],
        parent: &'static Table,
    },
    /// Every value of the column is accepted.
    AcceptedValues {
        table: &'static Table,
        column: &'static str,
        accepted: Accepted,
    },
    /// `songplays` holds one row per distinct play of staging (a NextSong event with a user,
    /// by its natural key), and no other.
    Reconciliation,
}

/// The references of the star schema, child columns first.
const RELATIONSHIPS: [(&Table, &[&str], &Table); 6] = [
    (&SONGPLAYS, &["user_id"], &USERS),
    (&SONGPLAYS, &["song_id"], &SONGS),
    (&SONGPLAYS, &["artist_id"], &ARTISTS),
    // A play's artist is the artist of the song it matched, not another record's.
    (&SONGPLAYS, &["song_id", "artist_id"], &SONGS),
    (&SONGPLAYS, &["start_time"], &TIME),
    (&SONGS, &["artist_id"], &ARTISTS),
];

const LEVELS: Accepted = Accepted::Texts(&["free", "paid"]);

const ACCEPTED: [(&Table, &str, Accepted); 7] = [
    (&SONGPLAYS, "level", LEVELS),
    (&USERS, "level", LEVELS),
    (&TIME, "hour", Accepted::Range(0, 23)),
    (&TIME, "day", Accepted::Range(1, 31)),
    (&TIME, "week", Accepted::Range(1, 53)),
    (&TIME, "month", Accepted::Range(1, 12)),
    // 0 = Sunday.
    (&TIME, "weekday", Accepted::Range(0, 6)),
];

/// Every check, in the order they run: not null, unique, relationships, accepted values,
/// reconciliation. Not null covers every column of a primary or unique key, and every
/// reference column the schema requires.
pub fn all() -> Vec<Check> {
    let mut checks = Vec::new();
    for table in STAR_TABLES {
        let mut columns = table.key_columns();
        let references = RELATIONSHIPS
            .iter()
            .filter(|(child, _, _)| child.name == table.name)
            .flat_map(|(_, columns, _)| columns.iter().copied())
            .filter(|column| is_required(table, column));
        for column in references {
            if !columns.contains(&column) {
                columns.push(column);
            }
        }
        checks.extend(
            columns
                .into_iter()
                .map(|column| Check::NotNull { table, column }),
        );
    }
    for table in STAR_TABLES {
        for key in [table.primary_key, table.unique] {
            if !key.is_empty() {
                checks.push(Check::Unique { table, key });
            }
        }
    }
    checks.extend(
        RELATIONSHIPS
            .iter()
            .map(|&(child, columns, parent)| Check::Relationship {
                child,
                columns,
                parent,
            }),
    );
    checks.extend(
        ACCEPTED
            .iter()
            .map(|&(table, column, accepted)| Check::AcceptedValues {
                table,
                column,
                accepted,
            }),
    );
    checks.push(Check::Reconciliation);
    checks
}

fn is_required(table: &Table, column: &str) -> bool {
    table.columns.iter().any(|c| c.name == column && c.required)
}

impl Check {
    /// The check's name, as the summary and errors show it.
    pub fn name(&self) -> String {
        match self {
            Check::NotNull { table, column } => format!("not_null({}.{column})", table.name),
            Check::Unique { table, key } => format!("unique({}: {})", table.name, key.join(", ")),
            Check::Relationship {
                child,
                columns,
                parent,
            } => {
                let columns = columns.join(", ");
                format!(
                    "relationship({}({columns}) in {}({columns}))",
                    child.name, parent.name
                )
            }
            Check::AcceptedValues {
                table,
                column,
                accepted,
            } => {
                let values = match accepted {
                    Accepted::Texts(values) => values.join(", "),
                    Accepted::Range(low, high) => format!("{low}-{high}"),
                };
                format!("accepted_values({}.{column}: {values})", table.name)
            }
            Check::Reconciliation => {
                "reconciliation(songplays = distinct NextSong plays in staging_events)".into()
            }
        }
    }

    /// The table whose rows the check reads and counts.
    pub fn table(&self) -> &'static Table {
        match self {
            Check::NotNull { table, .. }
            | Check::Unique { table, .. }
            | Check::AcceptedValues { table, .. } => table,
            Check::Relationship { child, .. } => child,
            Check::Reconciliation => &SONGPLAYS,
        }
    }
}

/// What one check found.
#[derive(Debug, Clone)]
pub struct CheckOutcome {
    pub name: String,
    pub examined: i64,
    pub failures: i64,
    pub elapsed: Duration,
    /// Up to [`SAMPLE_ROWS`] offending rows, when it failed.
    pub sample: QueryResult,
}

impl CheckOutcome {
    pub fn passed(&self) -> bool {
        self.failures == 0
    }
}

/// Runs every check against `warehouse`, in its open transaction if there is one.
pub fn run(warehouse: &mut dyn Warehouse) -> Result<Vec<CheckOutcome>> {
    let dialect = warehouse.dialect();
    for statement in sql::prepare_checks(dialect) {
        warehouse.execute(&statement)?;
    }
    let mut outcomes = Vec::new();
    for check in all() {
        let clock = Instant::now();
        let name = check.name();
        tracing::info!(check = %name, "checking");
        let counts = warehouse
            .query(&sql::check_counts(&check, dialect))
            .with_context(|| format!("the check {name} could not run"))?;
        let (examined, failures) = two_counts(&counts)
            .with_context(|| format!("the check {name} returned {:?}", counts.rows.first()))?;
        let sample = if failures > 0 {
            warehouse
                .query(&sql::offending_rows(&check, dialect))
                .with_context(|| format!("the offending rows of {name} could not be read"))?
        } else {
            QueryResult::default()
        };
        outcomes.push(CheckOutcome {
            name,
            examined,
            failures,
            elapsed: clock.elapsed(),
            sample,
        });
    }
    Ok(outcomes)
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
        crate::report::counted(outcomes.len(), "quality check", "quality checks")
    );
    for outcome in failed {
        out.push_str(&format!(
            "\n  {}: {} of {} fail",
            outcome.name,
            outcome.failures,
            crate::report::counted(outcome.examined, "row", "rows")
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
