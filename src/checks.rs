//! Data-quality checks of the star schema, as dbt's tests are for a dbt project: keys not null
//! and unique, every reference found, values among those accepted, and every play of staging
//! in `songplays` once. `etl` runs them inside its transaction after the transform, so a load
//! that breaks one commits nothing; the `check` binary runs them alone on a warehouse as it is.
//!
//! Each check is one query returning two numbers (rows examined, rows failing) written once for
//! every dialect; a failed check is shown with up to [`SAMPLE_ROWS`] of its offending rows.
//! Failing rows are counted as `COUNT(CASE WHEN failing THEN 1 END)`: COUNT of an expression
//! counts its non-NULL values on every engine
//! (<https://docs.aws.amazon.com/redshift/latest/dg/r_COUNT.html>).

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::schema::{
    ColumnType, Table, ARTISTS, SONGPLAYS, SONGS, STAGING_EVENTS, STAR_TABLES, TIME, USERS,
};
use crate::sql::Dialect;
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
        let mut columns: Vec<&'static str> = Vec::new();
        let references = RELATIONSHIPS
            .iter()
            .filter(|(child, _, _)| child.name == table.name)
            .flat_map(|(_, columns, _)| columns.iter().copied())
            .filter(|column| is_required(table, column));
        for column in table
            .primary_key
            .iter()
            .chain(table.unique)
            .copied()
            .chain(references)
        {
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

fn is_text(table: &Table, column: &str) -> bool {
    table
        .columns
        .iter()
        .any(|c| c.name == column && matches!(c.ty, ColumnType::Text(_)))
}

/// The columns that say which row is meant: the table's keys.
fn identifying(table: &Table) -> Vec<&'static str> {
    let mut columns: Vec<&'static str> = table.primary_key.to_vec();
    for column in table.unique {
        if !columns.contains(column) {
            columns.push(column);
        }
    }
    columns
}

/// `columns` with `more` added where missing.
fn with(mut columns: Vec<&'static str>, more: &[&'static str]) -> Vec<&'static str> {
    for column in more {
        if !columns.contains(column) {
            columns.push(column);
        }
    }
    columns
}

fn qualified(alias: &str, columns: &[&str]) -> String {
    columns
        .iter()
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The NextSong events with a user, one row per natural key: the plays `songplays` must hold.
fn staged_plays(d: Dialect) -> String {
    format!(
        "SELECT DISTINCT user_id, session_id, item_in_session FROM {} \
         WHERE {} AND user_id IS NOT NULL",
        STAGING_EVENTS.name,
        d.text_equal("page", "'NextSong'")
    )
}

const PLAY_KEY: [&str; 3] = ["user_id", "session_id", "item_in_session"];

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

    /// A query returning one row: the rows examined, then the rows that fail.
    pub fn count_sql(&self, d: Dialect) -> String {
        match self {
            // The count, as the contract states it; the unique and relationship checks see to
            // the keys themselves, and a failure shows the plays unmatched either way. Two
            // one-row subqueries in FROM, listed without a join condition (a cross join of one
            // row each, https://docs.aws.amazon.com/redshift/latest/dg/r_FROM_clause30.html),
            // rather than a WITH clause its main query's FROM does not name, which Redshift
            // says it ignores (https://docs.aws.amazon.com/redshift/latest/dg/r_WITH_clause.html).
            Check::Reconciliation => format!(
                "SELECT plays.n, ABS(kept.n - plays.n) \
                 FROM (SELECT COUNT(*) AS n FROM ({staged}) staged) plays, \
                 (SELECT COUNT(*) AS n FROM songplays) kept",
                staged = staged_plays(d)
            ),
            // PostgreSQL refuses a second row of a primary or unique key it holds (validated):
            // where the table has one on exactly these columns, the key holds, and only the rows
            // are counted; else, as on DuckDB. At 1M events the three large keys took 0.3 s in
            // all, against 3.3 s numbering their rows
            // (https://www.postgresql.org/docs/15/ddl-constraints.html#DDL-CONSTRAINTS-UNIQUE-CONSTRAINTS).
            Check::Unique { table, key } if d == Dialect::Postgres => {
                let mut sorted = key.to_vec();
                sorted.sort_unstable();
                let names: Vec<String> = sorted.iter().map(|c| format!("'{c}'")).collect();
                format!(
                    "SELECT (SELECT COUNT(*) FROM {table}), CASE WHEN EXISTS (SELECT 1 FROM \
                     pg_constraint c WHERE c.conrelid = '{table}'::regclass AND c.contype IN \
                     ('p', 'u') AND c.convalidated AND ARRAY(SELECT a.attname::text FROM \
                     pg_attribute a WHERE a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) \
                     ORDER BY a.attname) = ARRAY[{names}]) THEN 0 ELSE (SELECT \
                     CAST(COALESCE(SUM(n - 1), 0) AS BIGINT) FROM (SELECT COUNT(*) AS n FROM \
                     {table} GROUP BY {key}) key_values) END",
                    table = table.name,
                    names = names.join(", "),
                    key = key.join(", ")
                )
            }
            // Grouping (a hash aggregate) where declared keys are not assumed to hold: on
            // PostgreSQL at 1M events 0.65 s for the plays' natural key, against 1.9 s for
            // numbering the rows. The rows beyond the first of each key value fail.
            Check::Unique { table, key } if d != Dialect::Redshift => format!(
                "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(n - 1), 0) AS BIGINT) \
                 FROM (SELECT COUNT(*) AS n FROM {} GROUP BY {}) key_values",
                table.name,
                key.join(", ")
            ),
            // An anti-join, with no DISTINCT of the parent: on PostgreSQL at 1M events 0.31 s
            // for the plays' start times, against 1.6 s.
            Check::Relationship {
                child,
                columns,
                parent,
            } if d != Dialect::Redshift => {
                let set: Vec<String> = columns
                    .iter()
                    .map(|c| format!("t.{c} IS NOT NULL"))
                    .collect();
                let on: Vec<String> = columns.iter().map(|c| format!("p.{c} = t.{c}")).collect();
                format!(
                    "SELECT (SELECT COUNT(*) FROM {child}), (SELECT COUNT(*) FROM {child} t \
                     WHERE {set} AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE {on}))",
                    child = child.name,
                    parent = parent.name,
                    set = set.join(" AND "),
                    on = on.join(" AND ")
                )
            }
            _ => format!(
                "SELECT COUNT(*), COUNT(CASE WHEN {} THEN 1 END) {}",
                self.failing(d),
                self.from(d)
            ),
        }
    }

    /// A query returning up to [`SAMPLE_ROWS`] offending rows, in a stable order.
    pub fn sample_sql(&self, d: Dialect) -> String {
        if let Check::Reconciliation = self {
            let columns: Vec<String> = PLAY_KEY
                .iter()
                .map(|c| format!("COALESCE(k.{c}, p.{c}) AS {c}"))
                .collect();
            // The main query's FROM names the WITH table, and FULL JOIN is a join Redshift
            // has (https://docs.aws.amazon.com/redshift/latest/dg/r_WITH_clause.html,
            // https://docs.aws.amazon.com/redshift/latest/dg/r_FROM_clause30.html).
            return format!(
                "WITH plays AS ({staged}) \
                 SELECT {columns}, CASE WHEN p.user_id IS NULL THEN 'staged, not in songplays' \
                 ELSE 'in songplays, not staged' END AS problem {joined} \
                 ORDER BY 1, 2, 3 LIMIT {SAMPLE_ROWS}",
                staged = staged_plays(d),
                columns = columns.join(", "),
                joined = self.reconciliation_join(),
            );
        }
        let table = self.table();
        let shown = match self {
            Check::NotNull { column, .. } | Check::AcceptedValues { column, .. } => {
                with(identifying(table), &[*column])
            }
            Check::Unique { .. } => table.column_names().collect(),
            Check::Relationship { columns, .. } => with(identifying(table), columns),
            Check::Reconciliation => unreachable!("answered above"),
        };
        let order = identifying(table);
        format!(
            "SELECT {} {} WHERE {} ORDER BY {} LIMIT {SAMPLE_ROWS}",
            qualified("t", &shown),
            self.from(d),
            self.failing(d),
            qualified("t", &order),
        )
    }

    /// The FROM clause of the check's table as `t` (and what it is joined with).
    fn from(&self, d: Dialect) -> String {
        match self {
            Check::NotNull { table, .. } | Check::AcceptedValues { table, .. } => {
                format!("FROM {} t", table.name)
            }
            // Numbering the rows of each key value reads every row, where `GROUP BY ... HAVING`
            // may be planned away on Redshift, whose planner assumes declared keys hold
            // (https://docs.aws.amazon.com/redshift/latest/dg/t_Defining_constraints.html).
            Check::Unique { table, key } => {
                let key = key.join(", ");
                format!(
                    "FROM (SELECT {table}.*, ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY \
                     {key}) AS repeat_number FROM {table}) t",
                    table = table.name
                )
            }
            // Against the parent's distinct values, so a parent held twice cannot count a
            // child twice.
            Check::Relationship {
                child,
                columns,
                parent,
            } => {
                let on: Vec<String> = columns
                    .iter()
                    .map(|c| {
                        let (a, b) = (format!("t.{c}"), format!("p.{c}"));
                        if is_text(child, c) {
                            d.text_equal(&a, &b)
                        } else {
                            format!("{a} = {b}")
                        }
                    })
                    .collect();
                format!(
                    "FROM {} t LEFT JOIN (SELECT DISTINCT {} FROM {}) p ON {}",
                    child.name,
                    columns.join(", "),
                    parent.name,
                    on.join(" AND ")
                )
            }
            Check::Reconciliation => unreachable!("the reconciliation has its own queries"),
        }
    }

    /// The condition a failing row meets.
    fn failing(&self, d: Dialect) -> String {
        match self {
            Check::NotNull { column, .. } => format!("t.{column} IS NULL"),
            Check::Unique { .. } => "t.repeat_number > 1".into(),
            Check::Relationship { columns, .. } => {
                let set: Vec<String> = columns
                    .iter()
                    .map(|c| format!("t.{c} IS NOT NULL"))
                    .collect();
                format!("{} AND p.{} IS NULL", set.join(" AND "), columns[0])
            }
            Check::AcceptedValues {
                column, accepted, ..
            } => match accepted {
                Accepted::Texts(values) => {
                    let any: Vec<String> = values
                        .iter()
                        .map(|v| d.text_equal(&format!("t.{column}"), &format!("'{v}'")))
                        .collect();
                    format!("t.{column} IS NOT NULL AND NOT ({})", any.join(" OR "))
                }
                Accepted::Range(low, high) => {
                    format!("(t.{column} < {low} OR t.{column} > {high})")
                }
            },
            Check::Reconciliation => unreachable!("the reconciliation has its own queries"),
        }
    }

    /// Staged plays and songplays joined both ways by natural key, keeping the unmatched.
    fn reconciliation_join(&self) -> String {
        let on: Vec<String> = PLAY_KEY.iter().map(|c| format!("k.{c} = p.{c}")).collect();
        format!(
            "FROM plays k FULL JOIN songplays p ON {} WHERE k.user_id IS NULL OR p.user_id IS NULL",
            on.join(" AND ")
        )
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

/// PostgreSQL: memory for the hash tables of the reconciliation's distinct plays (1M events:
/// 0.69 s with 64 MB against 1.2 s with the default 4 MB, which spills them to disk); for
/// this session only, and a limit per hash table, not an allocation
/// (https://www.postgresql.org/docs/15/runtime-config-resource.html#GUC-WORK-MEM).
const POSTGRES_CHECK_MEMORY: &str = "SET work_mem = '64MB'";

/// Runs every check against `warehouse`, in its open transaction if there is one.
pub fn run(warehouse: &mut dyn Warehouse) -> Result<Vec<CheckOutcome>> {
    let dialect = warehouse.dialect();
    if dialect == Dialect::Postgres {
        warehouse.execute(POSTGRES_CHECK_MEMORY)?;
    }
    let mut outcomes = Vec::new();
    for check in all() {
        let clock = Instant::now();
        let name = check.name();
        tracing::info!(check = %name, "checking");
        let counts = warehouse
            .query(&check.count_sql(dialect))
            .with_context(|| format!("the check {name} could not run"))?;
        let (examined, failures) = two_counts(&counts)
            .with_context(|| format!("the check {name} returned {:?}", counts.rows.first()))?;
        let sample = if failures > 0 {
            warehouse
                .query(&check.sample_sql(dialect))
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
        "{} of {} quality check(s) failed:",
        failed.len(),
        outcomes.len()
    );
    for outcome in failed {
        out.push_str(&format!(
            "\n  {}: {} of {} row(s) fail",
            outcome.name, outcome.failures, outcome.examined
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
