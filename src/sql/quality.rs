//! The SQL of the quality checks ([`crate::schema::rules`], run by [`crate::checks`]): for each check, a query counting the rows
//! it examines and those that fail, and one reading up to [`SAMPLE_ROWS`] offending rows, in
//! each dialect. Failing rows are counted as `COUNT(CASE WHEN failing THEN 1 END)`: COUNT of an
//! expression counts its non-NULL values on every engine
//! (<https://docs.aws.amazon.com/redshift/latest/dg/r_COUNT.html>).

use super::{merged_rows, Dialect};
use crate::schema::rules::{Accepted, Check};
use crate::schema::{ColumnType, Table, STAGING_EVENTS};

/// Offending rows shown for a failed check.
pub const SAMPLE_ROWS: u32 = 5;

/// What runs before the checks. PostgreSQL: memory for the hash tables of the reconciliation's distinct plays (1M events:
/// 0.69 s with 64 MB against 1.2 s with the default 4 MB, which spills them to disk); for
/// this session only, and a limit per hash table, not an allocation
/// (https://www.postgresql.org/docs/15/runtime-config-resource.html#GUC-WORK-MEM). After a
/// merge, nested loops again for the rest of the transaction (the transform turned them off:
/// see [`super::prepare_transform`]): the few rows a merge changed then find their parent row
/// through its primary key's index, where a hash join would first read every row of `time`.
pub fn prepare_checks(d: Dialect, scope: CheckScope) -> Vec<String> {
    match (d, scope) {
        (Dialect::Postgres, CheckScope::Everything) => vec!["SET work_mem = '64MB'".to_string()],
        (Dialect::Postgres, CheckScope::MergedRows) => vec![
            "SET work_mem = '64MB'".to_string(),
            "SET LOCAL enable_nestloop = on".to_string(),
        ],
        (Dialect::DuckDb | Dialect::Redshift, _) => Vec::new(),
    }
}

fn is_text(table: &Table, column: &str) -> bool {
    table
        .columns
        .iter()
        .any(|c| c.name == column && matches!(c.ty, ColumnType::Text(_)))
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

/// Which rows of the star schema the checks read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckScope {
    /// Every row: the `check` binary, a full load, a load that transformed everything again.
    #[default]
    Everything,
    /// After an incremental merge ([`super::merge_incoming_events`], before [`super::END_MERGE`]):
    /// what the merge may have changed ([`merged_rows`]), on a warehouse whose last load passed
    /// the checks. The row checks, the relationships and the unique keys of `users` and
    /// `time` read the rows changed; the unique keys of `songplays` stay global, and the
    /// reconciliation counts what the merge added (see [`checked_rows`]).
    MergedRows,
}

/// The rows of its table a check reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckedRows {
    /// Every row.
    All,
    /// The rows this condition on the alias `t` holds for: those the load changed.
    Changed(String),
    /// None: the load changed nothing the check reads, so it holds as it did after the last
    /// load.
    Unchanged,
    /// The reconciliation after a merge: songplays holds the plays it held before, less those
    /// the merge replaced, plus the distinct plays of the incoming records (counted in
    /// `merge_from`). With the last load's reconciliation holding, that is the same equality
    /// as counting the distinct plays of all of staging, which it does not read again.
    PlaysAdded,
}

/// The rows `check` must read under `scope` to find what a load broke, given that the warehouse
/// passed every check before it. After a merge:
/// - a not-null or accepted-values check can only fail on a row the merge changed;
/// - a relationship can only break on a child row that changed, or on a child row whose parent
///   changed (a user deleted and not inserted again): its child rows changed or referencing a
///   changed parent row, tested on the child's own column of the same name;
/// - a unique key that holds the column marking the changed rows (`time`'s `start_time`,
///   `users`' `user_id`) reads the changed rows: two rows with the same key agree on that
///   column, so a duplicate that holds a changed row holds only changed rows;
/// - any other unique key is global: a duplicate can pair a changed row with an unchanged one
///   (songplays' keys: a new play against an old one). It stays cheap: a hash aggregate of the key's columns only (on PostgreSQL, the key the table holds
///   answers for it). Grouping only the rows that hold a changed row's key, by a semi-join, was
///   slower on DuckDB: at 1M events 0.15 s for each of the three large keys, against 0.06-0.08 s
///   grouping every row;
/// - the reconciliation counts the plays the merge added and replaced against the count before
///   it ([`CheckedRows::PlaysAdded`]).
///
/// A table the merge leaves as it was (`songs`, `artists`) is checked by none.
pub fn checked_rows(check: &Check, scope: CheckScope) -> CheckedRows {
    let changed = |table| match scope {
        CheckScope::Everything => Some(None),
        CheckScope::MergedRows => merged_rows(table, "t").map(Some),
    };
    match check {
        Check::Reconciliation => match scope {
            CheckScope::Everything => CheckedRows::All,
            CheckScope::MergedRows => CheckedRows::PlaysAdded,
        },
        Check::Unique { table, key } => match changed(table) {
            None => CheckedRows::Unchanged,
            Some(Some((column, rows))) if key.contains(&column) => CheckedRows::Changed(rows),
            Some(_) => CheckedRows::All,
        },
        Check::NotNull { table, .. } | Check::AcceptedValues { table, .. } => {
            match changed(table) {
                None => CheckedRows::Unchanged,
                Some(None) => CheckedRows::All,
                Some(Some((_, rows))) => CheckedRows::Changed(rows),
            }
        }
        Check::Relationship {
            child,
            columns,
            parent,
        } => match (changed(child), changed(parent)) {
            (None, None) => CheckedRows::Unchanged,
            (Some(None), _) | (_, Some(None)) => CheckedRows::All,
            (child_rows, parent_rows) => {
                let mut conditions: Vec<String> = Vec::new();
                if let Some(Some((_, rows))) = child_rows {
                    conditions.push(rows);
                }
                if let Some(Some((column, rows))) = parent_rows {
                    // The parent's condition, on the child's column of the same name.
                    if !columns.contains(&column) {
                        return CheckedRows::All;
                    }
                    if !conditions.contains(&rows) {
                        conditions.push(rows);
                    }
                }
                CheckedRows::Changed(format!("({})", conditions.join(" OR ")))
            }
        },
    }
}

/// `condition` and the rows to check, for a WHERE clause.
fn and_rows(rows: &CheckedRows, condition: &str) -> String {
    match rows {
        CheckedRows::Changed(changed) => format!("{changed} AND {condition}"),
        CheckedRows::All | CheckedRows::Unchanged | CheckedRows::PlaysAdded => {
            condition.to_string()
        }
    }
}

/// ` WHERE` and the rows to check, or nothing for every row.
fn where_rows(rows: &CheckedRows) -> String {
    match rows {
        CheckedRows::Changed(changed) => format!(" WHERE {changed}"),
        CheckedRows::All | CheckedRows::Unchanged | CheckedRows::PlaysAdded => String::new(),
    }
}

/// A query returning one row: the rows examined, then the rows that fail, among the rows
/// [`checked_rows`] gives for `scope` (never called for [`CheckedRows::Unchanged`]).
pub fn check_counts(check: &Check, d: Dialect, scope: CheckScope) -> String {
    let rows = checked_rows(check, scope);
    match check {
        // The count, as the contract states it; the unique and relationship checks see to
        // the keys themselves, and a failure shows the plays unmatched either way. Two
        // one-row subqueries in FROM, listed without a join condition (a cross join of one
        // row each, https://docs.aws.amazon.com/redshift/latest/dg/r_FROM_clause30.html),
        // rather than a WITH clause its main query's FROM does not name, which Redshift
        // says it ignores (https://docs.aws.amazon.com/redshift/latest/dg/r_WITH_clause.html).
        Check::Reconciliation if rows == CheckedRows::PlaysAdded => "SELECT plays.n, \
             ABS(kept.n - plays.n) FROM (SELECT plays_before - plays_replaced + incoming_plays \
             AS n FROM merge_from) plays, (SELECT COUNT(*) AS n FROM songplays) kept"
            .to_string(),
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
                "SELECT (SELECT COUNT(*) FROM {table} t{rows}), CASE WHEN EXISTS (SELECT 1 \
                 FROM pg_constraint c WHERE c.conrelid = '{table}'::regclass AND c.contype IN \
                 ('p', 'u') AND c.convalidated AND ARRAY(SELECT a.attname::text FROM \
                 pg_attribute a WHERE a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) \
                 ORDER BY a.attname) = ARRAY[{names}]) THEN 0 ELSE (SELECT \
                 CAST(COALESCE(SUM(n - 1), 0) AS BIGINT) FROM (SELECT COUNT(*) AS n FROM \
                 {table} t{rows} GROUP BY {key}) key_values) END",
                table = table.name,
                rows = where_rows(&rows),
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
             FROM (SELECT COUNT(*) AS n FROM {} t{} GROUP BY {}) key_values",
            table.name,
            where_rows(&rows),
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
                "SELECT (SELECT COUNT(*) FROM {child} t{examined}), (SELECT COUNT(*) FROM \
                 {child} t WHERE {failing})",
                child = child.name,
                examined = where_rows(&rows),
                failing = and_rows(
                    &rows,
                    &format!(
                        "{} AND NOT EXISTS (SELECT 1 FROM {} p WHERE {})",
                        set.join(" AND "),
                        parent.name,
                        on.join(" AND ")
                    )
                ),
            )
        }
        _ => format!(
            "SELECT COUNT(*), COUNT(CASE WHEN {} THEN 1 END) {}{}",
            failing(check, d),
            from(check, d),
            where_rows(&rows)
        ),
    }
}

/// Whether the check tests each row of its table on its own (not null, accepted values), so
/// that it can share one scan of the table with the others ([`row_check_counts`]).
pub fn is_row_check(check: &Check) -> bool {
    matches!(check, Check::NotNull { .. } | Check::AcceptedValues { .. })
}

/// One query for all the row checks of one table (see [`is_row_check`]): one row, the rows
/// examined, then the rows failing each check in the order given. One scan instead of one per
/// check: on PostgreSQL at 1M events, songplays' six row checks took 0.30 s one by one.
/// COUNT of an expression counts its non-NULL values on every engine (see the module's doc).
/// Under `scope`, the rows of the table the first check reads ([`checked_rows`]); the row
/// checks of one table read the same rows.
pub fn row_check_counts(table: &Table, checks: &[&Check], d: Dialect, scope: CheckScope) -> String {
    let rows = checks
        .first()
        .map_or(CheckedRows::All, |check| checked_rows(check, scope));
    let failing: Vec<String> = checks
        .iter()
        .map(|check| {
            debug_assert!(is_row_check(check) && check.table().name == table.name);
            format!("COUNT(CASE WHEN {} THEN 1 END)", failing(check, d))
        })
        .collect();
    format!(
        "SELECT COUNT(*), {} FROM {} t{}",
        failing.join(", "),
        table.name,
        where_rows(&rows)
    )
}

/// How many numbers a check query of [`check_counts`] or [`row_check_counts`] answers with
/// (rows examined, then one failure count per check), for the stand-ins that answer them
/// without a warehouse (`--print-sql`, the tests' Data API fake); `None` for other statements.
pub fn check_answer_width(statement: &str) -> Option<usize> {
    statement
        .starts_with("SELECT COUNT(*), COUNT(CASE WHEN ")
        .then(|| 1 + statement.matches("COUNT(CASE WHEN ").count())
}

/// A query returning up to [`SAMPLE_ROWS`] offending rows, in a stable order, among the rows
/// [`checked_rows`] gives for `scope`.
pub fn offending_rows(check: &Check, d: Dialect, scope: CheckScope) -> String {
    if let Check::Reconciliation = check {
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
            joined = reconciliation_join(),
        );
    }
    let table = check.table();
    let shown = match check {
        Check::NotNull { column, .. } | Check::AcceptedValues { column, .. } => {
            with(table.key_columns(), &[*column])
        }
        Check::Unique { .. } => table.column_names().collect(),
        Check::Relationship { columns, .. } => with(table.key_columns(), columns),
        Check::Reconciliation => unreachable!("answered above"),
    };
    let order = table.key_columns();
    format!(
        "SELECT {} {} WHERE {} ORDER BY {} LIMIT {SAMPLE_ROWS}",
        qualified("t", &shown),
        from(check, d),
        and_rows(&checked_rows(check, scope), &failing(check, d)),
        qualified("t", &order),
    )
}

/// The FROM clause of the check's table as `t` (and what it is joined with).
fn from(check: &Check, d: Dialect) -> String {
    match check {
        Check::NotNull { table, .. } | Check::AcceptedValues { table, .. } => {
            format!("FROM {} t", table.name)
        }
        // Numbering the rows of each key value reads every row, where `GROUP BY ... HAVING`
        // may be planned away on Redshift, whose planner assumes declared keys hold
        // (https://docs.aws.amazon.com/redshift/latest/dg/t_Defining_constraints.html).
        // Text keys partitioned with their lengths on Redshift (see Dialect::text_key).
        Check::Unique { table, key } => {
            let partition: Vec<String> = key
                .iter()
                .map(|c| {
                    if is_text(table, c) {
                        d.text_key(c)
                    } else {
                        c.to_string()
                    }
                })
                .collect();
            format!(
                "FROM (SELECT {table}.*, ROW_NUMBER() OVER (PARTITION BY {partition} ORDER BY \
                 {key}) AS repeat_number FROM {table}) t",
                table = table.name,
                partition = partition.join(", "),
                key = key.join(", ")
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
            // On Redshift, DISTINCT would merge values that differ by trailing blanks: their
            // lengths keep them apart (see Dialect::text_key).
            let distinct: Vec<String> = columns
                .iter()
                .map(|c| match d {
                    Dialect::Redshift if is_text(child, c) => {
                        format!("{c}, LENGTH({c}) AS {c}_length")
                    }
                    _ => c.to_string(),
                })
                .collect();
            format!(
                "FROM {} t LEFT JOIN (SELECT DISTINCT {} FROM {}) p ON {}",
                child.name,
                distinct.join(", "),
                parent.name,
                on.join(" AND ")
            )
        }
        Check::Reconciliation => unreachable!("the reconciliation has its own queries"),
    }
}

/// The condition a failing row meets.
fn failing(check: &Check, d: Dialect) -> String {
    match check {
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
fn reconciliation_join() -> String {
    let on: Vec<String> = PLAY_KEY.iter().map(|c| format!("k.{c} = p.{c}")).collect();
    format!(
        "FROM plays k FULL JOIN songplays p ON {} WHERE k.user_id IS NULL OR p.user_id IS NULL",
        on.join(" AND ")
    )
}
