//! The warehouse behind one trait. The ETL, `create_tables` and `analysis` speak only to
//! [`Warehouse`]; each engine (DuckDB, PostgreSQL, Redshift, Redshift Data API) decides how it
//! connects, runs SQL in its [`Dialect`] and bulk-appends staging rows. Redshift, over the wire
//! or through the Data API, loads staging itself from S3.

pub mod coalesce;
mod duckdb;
mod pg_socket;
mod postgres;
mod print;
mod redshift;
mod redshift_data;
pub mod s3_copy;

use anyhow::{bail, Context, Result};
use arrow_array::RecordBatch;

use crate::config::{Config, EngineChoice};
use crate::progress::Progress;
use crate::record::Row;
use crate::schema::Table;
use crate::sql::Dialect;
use crate::stats::SourceStats;

pub use self::duckdb::{Access as DuckDbAccess, DuckDbWarehouse};
pub use self::postgres::{sslmode_for as postgres_sslmode, PostgresWarehouse};
pub use self::print::SqlPrinter;
pub use self::redshift::RedshiftWarehouse;
pub use self::redshift_data::{Polling, RedshiftDataWarehouse, Target};
pub use self::s3_copy::S3Load;

/// Fails once the run was interrupted (see [`crate::interrupt`]): each engine calls it before a
/// statement or batch. A rollback always goes through, so an interrupted run ends cleanly.
fn stop_if_interrupted(sql: &str) -> Result<()> {
    if sql == crate::sql::ROLLBACK {
        return Ok(());
    }
    crate::interrupt::check()
}

/// One value of a query result, independent of the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cell::Null => Ok(()),
            Cell::Int(i) => write!(f, "{i}"),
            Cell::Float(x) => write!(f, "{x}"),
            Cell::Text(s) => f.write_str(s),
        }
    }
}

/// The rows of a query with their column names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

impl QueryResult {
    /// The single integer a `COUNT(*)`-style query returned.
    pub fn single_int(&self) -> Option<i64> {
        match self.rows.first()?.first()? {
            Cell::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The single integer a check or count returned; anything else is an error naming
    /// `what`, never taken for 0.
    pub fn expect_int(&self, what: &str) -> Result<i64> {
        self.single_int().ok_or_else(|| {
            anyhow::anyhow!(
                "{what} returned {:?} instead of one number; nothing was committed",
                self.rows.first().and_then(|row| row.first())
            )
        })
    }
}

/// A warehouse the pipeline can create tables in, load and query.
pub trait Warehouse {
    /// Where this warehouse is, for messages (never holds a secret).
    fn describe(&self) -> String;
    fn dialect(&self) -> Dialect;
    /// Runs one or more statements that return no rows.
    fn execute(&mut self, sql: &str) -> Result<()>;
    fn query(&mut self, sql: &str) -> Result<QueryResult>;
    fn begin(&mut self) -> Result<()> {
        self.execute(crate::sql::BEGIN)
    }
    fn commit(&mut self) -> Result<()> {
        self.execute(crate::sql::COMMIT)
    }
    /// Whether a failed [`commit`](Warehouse::commit) may have been carried out: the server
    /// did not answer it (the connection broke, a request timed out) rather than refusing it.
    /// An engine in this process (DuckDB) knows: a COMMIT it failed did not happen.
    fn commit_outcome_unknown(&self, _error: &anyhow::Error) -> bool {
        false
    }
    fn rollback(&mut self) -> Result<()> {
        self.execute(crate::sql::ROLLBACK)
    }
    /// Makes the open transaction the only load of the warehouse (see [`crate::sql::lock_for_load`]),
    /// waiting at most `timeout` for another one to end.
    fn lock_for_load(&mut self, timeout: std::time::Duration) -> Result<()> {
        for statement in crate::sql::lock_for_load(self.dialect(), timeout) {
            self.execute(&statement)?;
        }
        Ok(())
    }
    /// Whether the warehouse loads staging itself from `[S3]` (Redshift's COPY) instead of
    /// receiving the rows the tool reads.
    fn stages_from_s3(&self) -> bool {
        false
    }
    /// For a warehouse that [stages from S3](Warehouse::stages_from_s3): fills the emptied
    /// tables `load` names and `load_errors` from `[S3]`, inside the caller's transaction.
    fn stage_from_s3(
        &mut self,
        _config: &Config,
        _load: &S3Load,
        _progress: &Progress,
    ) -> Result<Vec<SourceStats>> {
        bail!(
            "{} loads staging from the rows the tool reads",
            self.describe()
        )
    }
    /// Whether this warehouse only prints the statements (`--print-sql`): it holds no ledger
    /// and nothing is listed for it.
    fn prints_only(&self) -> bool {
        false
    }
    /// A comment among the statements: shown by a warehouse that only prints them
    /// (`--print-sql`), ignored by the others.
    fn note(&mut self, _comment: &str) {}
    /// Called between long steps that send the warehouse nothing (S3 listing and writing), so
    /// that a session that lapses when idle (the Data API's) outlasts them.
    fn keep_alive(&mut self) -> Result<()> {
        Ok(())
    }
    /// Appends a batch of rows (see [`crate::batch`]) to a table in bulk.
    fn append(&mut self, table: &Table, batch: &RecordBatch) -> Result<()>;
    /// Adds a few rows the tool made (the ledger's, say), appended in batches. The Redshift
    /// engines, which take no rows from the tool in bulk, send them as statements instead
    /// (see [`insert_as_statements`]).
    fn insert_rows(&mut self, table: &Table, rows: &[Row]) -> Result<()> {
        for rows in rows.chunks(crate::batch::BATCH_ROWS) {
            self.append(table, &crate::batch::record_batch(table, rows)?)?;
        }
        Ok(())
    }
}

/// [`Warehouse::insert_rows`] for an engine that takes no bulk rows from the tool (Redshift):
/// `INSERT` statements of at most 64 KiB (see [`crate::sql::insert_rows_redshift`]).
fn insert_as_statements(warehouse: &mut dyn Warehouse, table: &Table, rows: &[Row]) -> Result<()> {
    for statement in crate::sql::insert_rows_redshift(table, rows) {
        warehouse.execute(&statement)?;
    }
    Ok(())
}

/// The refusal of an engine whose staging is loaded by the warehouse's own COPY.
fn not_appendable(table: &Table) -> Result<()> {
    bail!(
        "{} is loaded by Redshift's COPY from S3, not by the tool",
        table.name
    )
}

/// Logs a statement an engine sends, at -vv (`debug`): the SQL the toolkit builds holds no
/// password or key (a COPY names the role's ARN, which is not a secret). Long statements (the
/// rejects' INSERTs) are cut.
fn log_statement(engine: &str, sql: &str) {
    if tracing::enabled!(tracing::Level::DEBUG) {
        const SHOWN: usize = 2000;
        let end = sql
            .char_indices()
            .map(|(i, _)| i)
            .find(|i| *i >= SHOWN)
            .unwrap_or(sql.len());
        let cut = if end < sql.len() { " [...]" } else { "" };
        tracing::debug!("{engine}: {}{cut}", &sql[..end]);
    }
}

/// The first line of a statement, to name it in errors without flooding them.
fn first_line(sql: &str) -> &str {
    sql.lines().next().unwrap_or_default()
}

/// What a load says when another one holds the warehouse, on every engine.
/// Whether a failed `lock_for_load` ran out of time waiting (another load holds the lock):
/// PostgreSQL's own wait names the holder; Redshift's LOCK is ended by `statement_timeout`
/// ("canceling statement due to statement timeout", or the Data API's "cancelled").
pub fn is_lock_wait(error: &anyhow::Error) -> bool {
    let text = format!("{error:#}").to_ascii_lowercase();
    [
        "lock is held by",
        "statement timeout",
        "canceling statement",
        "cancelled on",
        "timed out",
    ]
    .iter()
    .any(|sign| text.contains(sign))
}

pub fn held_by_another_load(warehouse: &str, waited: std::time::Duration) -> String {
    format!(
        "another load holds the warehouse ({warehouse}); waited {} s: wait for it to finish, \
         or pass --lock-timeout SECONDS to wait for it",
        waited.as_secs()
    )
}

/// Opens the warehouse `dwh.cfg` selects for a load: as [`open`] (a DuckDB file is made when
/// absent, so a first `etl` needs no `create_tables`), except that another process holding a
/// DuckDB file is waited for, at most `lock_timeout`.
pub fn open_for_load(
    config: &Config,
    lock_timeout: std::time::Duration,
) -> Result<Box<dyn Warehouse>> {
    match config.engine() {
        EngineChoice::DuckDb => open_duckdb(config, DuckDbAccess::Write, lock_timeout),
        _ => open_server(config, Access::Write),
    }
}

/// Opens the warehouse `dwh.cfg` selects to read it (`analysis`, `check`), so that any number
/// of readers may share it: a DuckDB file must exist, and is opened read-only; a writer holding
/// it (DuckDB's file lock, or a load's lock on a PostgreSQL table) is waited for, at most
/// `lock_timeout`, saying after a second what is waited for.
pub fn open_read_only(
    config: &Config,
    lock_timeout: std::time::Duration,
) -> Result<Box<dyn Warehouse>> {
    match config.engine() {
        EngineChoice::DuckDb => open_duckdb(config, DuckDbAccess::Read, lock_timeout),
        _ => open_server(config, Access::Read(lock_timeout)),
    }
}

/// The DuckDB file `[WAREHOUSE]` names, opened as `access` says (see [`DuckDbWarehouse::open_with`]).
fn open_duckdb(
    config: &Config,
    access: DuckDbAccess,
    lock_timeout: std::time::Duration,
) -> Result<Box<dyn Warehouse>> {
    if let Some(schema) = &config.warehouse.schema {
        bail!(
            "{}: [WAREHOUSE] SCHEMA = {schema} is for PostgreSQL and Redshift, where the warehouse \
             may share a database with other tables; the DuckDB file [WAREHOUSE] DUCKDB_PATH is \
             the warehouse's own: remove SCHEMA, or choose a server engine",
            config.path.display()
        );
    }
    Ok(Box::new(DuckDbWarehouse::open_with(
        &config.warehouse.duckdb_path,
        &config.warehouse.duckdb_memory_limit,
        access,
        lock_timeout,
    )?))
}

/// What a step does with a server warehouse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Creates tables or loads: `[WAREHOUSE] SCHEMA` is made when absent.
    Write,
    /// Only reads, waiting at most this long for a load's locks.
    Read(std::time::Duration),
}

/// Opens the warehouse `dwh.cfg` selects (see [`Config::engine`]) for `create_tables`; a
/// DuckDB file is made if absent.
pub fn open(config: &Config) -> Result<Box<dyn Warehouse>> {
    match config.engine() {
        EngineChoice::DuckDb => {
            open_duckdb(config, DuckDbAccess::Create, std::time::Duration::ZERO)
        }
        _ => open_server(config, Access::Write),
    }
}

/// Connects to the server engine `dwh.cfg` selects, in `[WAREHOUSE] SCHEMA` when set.
fn open_server(config: &Config, access: Access) -> Result<Box<dyn Warehouse>> {
    let engine = config.engine();
    if matches!(engine, EngineChoice::Postgres | EngineChoice::Redshift)
        && config.cluster.host.trim().is_empty()
    {
        bail!(
            "{}: [CLUSTER] HOST is empty, and the {} engine connects to it: set HOST to the \
             server's name or address (iac_create writes Redshift's), or use the duckdb engine",
            config.path.display(),
            engine.name()
        );
    }
    let mut warehouse: Box<dyn Warehouse> = match engine {
        EngineChoice::Postgres => {
            let mut postgres = PostgresWarehouse::connect(&config.cluster)?;
            if let Access::Read(wait) = access {
                postgres.wait_for_locks(wait)?;
            }
            Box::new(postgres)
        }
        EngineChoice::Redshift => Box::new(RedshiftWarehouse::connect(&config.cluster)?),
        EngineChoice::RedshiftData => Box::new(RedshiftDataWarehouse::connect(config)?),
        EngineChoice::DuckDb | EngineChoice::Auto => bail!("the engine choice was not resolved"),
    };
    if let Some(schema) = &config.warehouse.schema {
        for statement in crate::sql::use_schema(schema, access == Access::Write) {
            warehouse.execute(&statement).with_context(|| {
                format!(
                    "cannot use [WAREHOUSE] SCHEMA = {schema} in {}",
                    warehouse.describe()
                )
            })?;
        }
    }
    Ok(warehouse)
}

#[cfg(test)]
mod lock_tests {
    use super::is_lock_wait;

    #[test]
    fn only_a_wait_that_ran_out_is_another_loads_doing() {
        for waited in [
            "the load's lock is held by etl (PID 7) since 10:00",
            "Redshift Data API failed on: LOCK staging_events: the statement failed: ERROR: \
             canceling statement due to statement timeout",
            "db error: ERROR: Query (123) cancelled on user's request",
        ] {
            assert!(
                is_lock_wait(&anyhow::anyhow!(waited.to_string())),
                "{waited}"
            );
        }
        for refused in [
            "ERROR: relation \"staging_events\" does not exist",
            "ERROR: permission denied for relation staging_events",
        ] {
            assert!(
                !is_lock_wait(&anyhow::anyhow!(refused.to_string())),
                "{refused}"
            );
        }
    }
}
