//! The embedded engine: one DuckDB file, no server, works offline. Staging batches go in
//! through DuckDB's Arrow appender (several times faster than appending value by value),
//! inside the caller's transaction.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use arrow_array::RecordBatch;
use duckdb::types::ValueRef;
use duckdb::Connection;

use super::{first_line, Cell, QueryResult, Warehouse};
use crate::config::MemoryLimit;
use crate::schema::Table;
use crate::sql::{self, Dialect};

pub struct DuckDbWarehouse {
    path: PathBuf,
    conn: Connection,
}

/// How a DuckDB file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read and write, made if absent (`create_tables`).
    Create,
    /// Read and write, made if absent (a load: a first `etl` creates the warehouse); another
    /// process holding the file is waited for.
    Write,
    /// Read only; the file must exist. Any number of processes may read a file at once, but
    /// not while one writes it (https://duckdb.org/docs/stable/connect/concurrency).
    Read,
}

impl DuckDbWarehouse {
    /// Opens (or makes) the file for `create_tables`.
    pub fn open(path: &Path, memory_limit: &MemoryLimit) -> Result<Self> {
        Self::open_with(path, memory_limit, Access::Create, Duration::ZERO)
    }

    /// Opens the file as `access` says, waiting at most `timeout` while another process holds
    /// its lock (DuckDB allows one process to write a file:
    /// https://duckdb.org/docs/stable/connect/concurrency).
    pub fn open_with(
        path: &Path,
        memory_limit: &MemoryLimit,
        access: Access,
        timeout: Duration,
    ) -> Result<Self> {
        if access == Access::Read && !path.exists() {
            anyhow::bail!(
                "no warehouse at {}: check [WAREHOUSE] DUCKDB_PATH, or run etl (its first run \
                 creates it)",
                path.display()
            );
        }
        let started = Instant::now();
        let mut said = false;
        let conn = loop {
            let opened = match access {
                Access::Read => duckdb::Config::default()
                    .access_mode(duckdb::AccessMode::ReadOnly)
                    .and_then(|config| Connection::open_with_flags(path, config)),
                Access::Create | Access::Write => Connection::open(path),
            };
            match opened {
                Ok(conn) => break conn,
                Err(e) if is_lock_conflict(&e) => {
                    if crate::interrupt::requested() {
                        return Err(crate::interrupt::Interrupted.into());
                    }
                    if started.elapsed() >= timeout {
                        return Err(held(path, access, &e, started.elapsed()));
                    }
                    if !said && started.elapsed() >= Duration::from_secs(1) {
                        let holder = lock_holder(&e.to_string()).map_or_else(
                            || "another process".to_string(),
                            |(program, pid)| format!("{program} (PID {pid})"),
                        );
                        let waiting = if access == Access::Read {
                            "a load"
                        } else {
                            "it"
                        };
                        tracing::warn!(
                            "duckdb {} is in use by {holder}: waiting for {waiting} to finish, \
                             up to {} s in all (--lock-timeout)",
                            path.display(),
                            timeout.as_secs()
                        );
                        said = true;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => {
                    return Err(anyhow::anyhow!(e).context(format!(
                        "cannot open the DuckDB warehouse {}: check [WAREHOUSE] DUCKDB_PATH \
                         (its directory must exist{})",
                        path.display(),
                        if access == Access::Read {
                            ""
                        } else {
                            " and be writable"
                        }
                    )))
                }
            }
        };
        conn.execute_batch(&sql::duckdb_session(memory_limit))
            .context("cannot configure DuckDB: check [WAREHOUSE] DUCKDB_MEMORY_LIMIT")?;
        // Ctrl-C stops the running statement (see crate::interrupt).
        let handle = conn.interrupt_handle();
        crate::interrupt::on_interrupt(move || handle.interrupt());
        Ok(DuckDbWarehouse {
            path: path.to_path_buf(),
            conn,
        })
    }
}

/// What opening `path` says when another process holds it: a load is told another load holds
/// the warehouse (the words of every engine); a reader, who holds no lock of its own, is told
/// who writes it.
fn held(path: &Path, access: Access, error: &duckdb::Error, waited: Duration) -> anyhow::Error {
    let text = error.to_string();
    let holder = lock_holder(&text);
    match (access, holder) {
        (Access::Read, Some((program, pid))) => anyhow::anyhow!(
            "duckdb {} is in use by {program} (PID {pid}); waited {} s: wait for it to finish, \
             or pass --lock-timeout SECONDS to wait longer",
            path.display(),
            waited.as_secs()
        ),
        (Access::Read, None) => anyhow::anyhow!(
            "duckdb {} is in use by another process; waited {} s: wait for it to finish, or \
             pass --lock-timeout SECONDS to wait longer",
            path.display(),
            waited.as_secs()
        ),
        // The holder named, DuckDB's long message adds nothing; a reader is not a load.
        (_, Some((program, pid))) if ["analysis", "check"].contains(&program.as_str()) => {
            anyhow::anyhow!(
                "{program} (PID {pid}) is reading duckdb {}, and DuckDB lets no process write \
                 a file others read; waited {} s: wait for it to finish, or pass \
                 --lock-timeout SECONDS to wait longer",
                path.display(),
                waited.as_secs()
            )
        }
        (_, Some((program, pid))) => anyhow::anyhow!(super::held_by_another_load(
            &format!("duckdb {}, in use by {program} (PID {pid})", path.display()),
            waited,
        )),
        (_, None) => anyhow::anyhow!(text).context(super::held_by_another_load(
            &format!("duckdb {}", path.display()),
            waited,
        )),
    }
}

/// Whether opening failed because another process holds the file's lock.
fn is_lock_conflict(error: &duckdb::Error) -> bool {
    let text = error.to_string();
    text.contains("Could not set lock") || text.contains("Conflicting lock")
}

/// The program and process holding the file, from DuckDB's lock error ("Conflicting lock is
/// held in /path/to/program (PID 1234)").
fn lock_holder(error: &str) -> Option<(String, u32)> {
    let rest = error.split("Conflicting lock is held in ").nth(1)?;
    let (program, rest) = rest.split_once(" (PID ")?;
    let pid = rest.split(')').next()?.trim().parse().ok()?;
    let name = Path::new(program)
        .file_name()
        .map_or(program.to_string(), |n| n.to_string_lossy().into_owned());
    Some((name, pid))
}

fn cell(value: ValueRef<'_>) -> Cell {
    use ValueRef as V;
    match value {
        V::Null => Cell::Null,
        V::Boolean(b) => Cell::Int(b as i64),
        V::TinyInt(i) => Cell::Int(i.into()),
        V::SmallInt(i) => Cell::Int(i.into()),
        V::Int(i) => Cell::Int(i.into()),
        V::BigInt(i) => Cell::Int(i),
        V::UTinyInt(i) => Cell::Int(i.into()),
        V::USmallInt(i) => Cell::Int(i.into()),
        V::UInt(i) => Cell::Int(i.into()),
        V::HugeInt(i) => i64::try_from(i).map_or_else(|_| Cell::Text(i.to_string()), Cell::Int),
        V::UBigInt(i) => i64::try_from(i).map_or_else(|_| Cell::Text(i.to_string()), Cell::Int),
        V::Float(f) => Cell::Float(f.into()),
        V::Double(f) => Cell::Float(f),
        V::Text(bytes) => Cell::Text(String::from_utf8_lossy(bytes).into_owned()),
        other => match other.to_owned() {
            duckdb::types::Value::Timestamp(unit, value) => {
                let micros = unit.to_micros(value);
                Cell::Text(
                    chrono::DateTime::from_timestamp_micros(micros)
                        .map(|t| t.naive_utc().format("%Y-%m-%d %H:%M:%S%.3f").to_string())
                        .unwrap_or_else(|| micros.to_string()),
                )
            }
            value => Cell::Text(format!("{value:?}")),
        },
    }
}

impl Warehouse for DuckDbWarehouse {
    fn describe(&self) -> String {
        format!("duckdb {}", self.path.display())
    }

    fn dialect(&self) -> Dialect {
        Dialect::DuckDb
    }

    fn execute(&mut self, sql: &str) -> Result<()> {
        crate::interrupt::check(sql)?;
        super::log_statement("duckdb", sql);
        self.conn
            .execute_batch(sql)
            .with_context(|| format!("DuckDB failed on: {}", first_line(sql)))
    }

    fn query(&mut self, sql: &str) -> Result<QueryResult> {
        crate::interrupt::check(sql)?;
        super::log_statement("duckdb", sql);
        let context = || format!("DuckDB failed on: {}", first_line(sql));
        let mut stmt = self.conn.prepare(sql).with_context(context)?;
        let mut rows = stmt.query([]).with_context(context)?;
        let columns = rows.as_ref().map(|s| s.column_names()).unwrap_or_default();
        let mut result = QueryResult {
            columns,
            rows: Vec::new(),
        };
        while let Some(row) = rows.next().with_context(context)? {
            let cells = (0..result.columns.len())
                .map(|i| row.get_ref(i).map(cell))
                .collect::<duckdb::Result<Vec<_>>>()
                .with_context(context)?;
            result.rows.push(cells);
        }
        Ok(result)
    }

    fn append(&mut self, table: &Table, batch: &RecordBatch) -> Result<()> {
        let context = || format!("DuckDB failed appending to {}", table.name);
        if batch.num_rows() == 0 {
            return Ok(());
        }
        crate::interrupt::check(table.name)?;
        let mut appender = self.conn.appender(table.name).with_context(context)?;
        appender
            .append_record_batch(batch.clone())
            .with_context(context)?;
        appender.flush().with_context(context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::record_batch;
    use crate::record::Field;
    use crate::schema::LOAD_ERRORS;

    fn warehouse(dir: &tempfile::TempDir) -> DuckDbWarehouse {
        DuckDbWarehouse::open(&dir.path().join("w.duckdb"), &MemoryLimit::default_limit()).unwrap()
    }

    #[test]
    fn the_memory_limit_reaches_duckdb() {
        let dir = tempfile::tempdir().unwrap();
        let limit: MemoryLimit = "100MB".parse().unwrap();
        let mut wh = DuckDbWarehouse::open(&dir.path().join("w.duckdb"), &limit).unwrap();
        let shown = wh
            .query("SELECT current_setting('memory_limit')")
            .unwrap()
            .rows[0][0]
            .to_string();
        // DuckDB shows 100 MB (10^8 bytes) in binary units.
        assert_eq!(shown, "95.3 MiB");
    }

    #[test]
    fn the_lock_holder_is_read_from_duckdbs_message() {
        let text = "IO Error: Could not set lock on file \"/w.duckdb\": Conflicting lock is held \
                    in /usr/local/bin/etl (PID 4242). See also https://duckdb.org/docs";
        assert_eq!(lock_holder(text), Some(("etl".to_string(), 4242)));
        assert_eq!(lock_holder("IO Error: something else"), None);
    }

    #[test]
    fn appends_inside_a_rolled_back_transaction_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut wh = warehouse(&dir);
        wh.execute(&sql::create_table(&LOAD_ERRORS, Dialect::DuckDb))
            .unwrap();
        let row = vec![
            Field::Text("log_data".into()),
            Field::Text("f.json".into()),
            Field::Int(1),
            Field::Text("bad".into()),
            Field::Null,
        ];
        let batch = record_batch(&LOAD_ERRORS, &[row]).unwrap();
        wh.begin().unwrap();
        wh.append(&LOAD_ERRORS, &batch).unwrap();
        let count = sql::count_rows(&LOAD_ERRORS);
        assert_eq!(wh.query(&count).unwrap().single_int(), Some(1));
        wh.rollback().unwrap();
        assert_eq!(wh.query(&count).unwrap().single_int(), Some(0));
        wh.append(&LOAD_ERRORS, &batch).unwrap();
        let result = wh
            .query("SELECT file, line, raw_text FROM load_errors")
            .unwrap();
        assert_eq!(result.columns, ["file", "line", "raw_text"]);
        assert_eq!(
            result.rows,
            vec![vec![Cell::Text("f.json".into()), Cell::Int(1), Cell::Null]]
        );
    }
}
