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

/// The bytes a DuckDB database file holds at offset 8, after the block checksum: its magic
/// number (`MainHeader::MAGIC_BYTES` at `MAGIC_BYTE_OFFSET` in the bundled DuckDB's
/// src/storage/single_file_block_manager.cpp and storage_info.hpp).
const DUCKDB_MAGIC: &[u8; 4] = b"DUCK";

/// Checks, before DuckDB opens it, that `path` names a DuckDB file or nothing yet (for a load,
/// in a directory it may write): a file of another format is refused rather than opened or
/// rewritten, and a path DuckDB would read differently (a `\`, which it takes for a
/// directory separator) is refused. Whether the file exists, as the open will see it.
fn check_file(path: &Path, access: Access) -> Result<bool> {
    let shown = path.display();
    if path.to_string_lossy().contains('\\') {
        anyhow::bail!(
            "[WAREHOUSE] DUCKDB_PATH = {shown} holds a backslash, which DuckDB reads as a \
             directory separator, so it would open another file than the one named: use / \
             (or a name without \\)"
        );
    }
    let exists = match std::fs::metadata(path) {
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => anyhow::bail!("cannot look at the DuckDB warehouse {shown}: {e}"),
    };
    if exists {
        let (file, metadata) = crate::files::open_regular(path)
            .with_context(|| format!("[WAREHOUSE] DUCKDB_PATH = {shown} is not a DuckDB file"))?;
        if metadata.len() > 0 {
            use std::io::Read;
            let mut header = [0u8; 12];
            let read = (&file).take(12).read(&mut header).unwrap_or(0);
            if read < 12 || &header[8..12] != DUCKDB_MAGIC {
                anyhow::bail!(
                    "[WAREHOUSE] DUCKDB_PATH = {shown} is not a DuckDB database (its header is \
                     not DuckDB's): it was left as it is; point DUCKDB_PATH at a new file name \
                     or at the warehouse's own file"
                );
            }
        }
    }
    if access != Access::Read {
        // DuckDB writes its .wal beside the file: a directory it cannot write would fail the
        // load only at COMMIT, after all the work.
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        tempfile::Builder::new()
            .prefix(".sparkify-write-check")
            .tempfile_in(dir)
            .with_context(|| {
                format!(
                    "cannot write in {}, the directory of the DuckDB warehouse {shown} (DuckDB \
                     writes its .wal file there): make it writable, or set [WAREHOUSE] \
                     DUCKDB_PATH elsewhere",
                    dir.display()
                )
            })?;
    }
    Ok(exists)
}

/// Checks that DuckDB opened `path` itself as a DuckDB database: not an in-memory database,
/// not another file, not another format.
fn check_opened(conn: &Connection, path: &Path) -> Result<()> {
    let opened: (Option<String>, String) = conn
        .query_row(sql::DUCKDB_OPENED_DATABASE, [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .context("cannot ask DuckDB which database it opened")?;
    let same_file = opened.0.as_deref().is_some_and(|opened| {
        let opened = Path::new(opened);
        opened == path
            || matches!(
                (std::fs::canonicalize(opened), std::fs::canonicalize(path)),
                (Ok(a), Ok(b)) if a == b
            )
    });
    if !same_file || !opened.1.eq_ignore_ascii_case("duckdb") {
        anyhow::bail!(
            "DuckDB opened {} as a {} database instead of the DuckDB file {}: point \
             [WAREHOUSE] DUCKDB_PATH at a plain file name such as sparkify.duckdb",
            opened.0.as_deref().unwrap_or("(nothing: in memory)"),
            opened.1,
            path.display()
        );
    }
    Ok(())
}

impl DuckDbWarehouse {
    /// The version of the DuckDB linked in (`v1.4.1`, say), or why it cannot be told.
    pub fn library_version() -> String {
        duckdb::Connection::open_in_memory()
            .and_then(|c| {
                c.query_row("SELECT library_version FROM pragma_version()", [], |r| {
                    r.get(0)
                })
            })
            .unwrap_or_else(|e| format!("unknown ({e})"))
    }

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
        let exists = check_file(path, access)?;
        if access == Access::Read && !exists {
            anyhow::bail!(
                "no warehouse at {}: check [WAREHOUSE] DUCKDB_PATH, or run etl (its first run \
                 creates it)",
                path.display()
            );
        }
        let started = Instant::now();
        let mut said = false;
        let conn = loop {
            // Extensions are never installed or loaded by themselves: a file of another format
            // (SQLite, say) would otherwise make DuckDB download a scanner over the network
            // and open that file through it
            // (https://duckdb.org/docs/stable/configuration/overview, autoinstall_known_extensions
            // and autoload_known_extensions).
            let opened = duckdb::Config::default()
                .enable_autoload_extension(false)
                .and_then(|config| match access {
                    Access::Read => config.access_mode(duckdb::AccessMode::ReadOnly),
                    Access::Create | Access::Write => Ok(config),
                })
                .and_then(|config| Connection::open_with_flags(path, config));
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
        check_opened(&conn, path)?;
        tracing::info!(
            memory_limit = memory_limit.as_str(),
            "DuckDB may hold this much before it spills"
        );
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
        super::stop_if_interrupted(sql)?;
        super::log_statement("duckdb", sql);
        self.conn
            .execute_batch(sql)
            .with_context(|| format!("DuckDB failed on: {}", first_line(sql)))
    }

    fn query(&mut self, sql: &str) -> Result<QueryResult> {
        super::stop_if_interrupted(sql)?;
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
        super::stop_if_interrupted(table.name)?;
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
