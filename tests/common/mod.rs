//! Helpers for the integration tests: a temporary workspace with its own `dwh.cfg` and DuckDB
//! file, the real binaries run against it, and direct reads of the resulting warehouse.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use tempfile::TempDir;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/udacity-sample`, the real sample. Absent: `None` with a notice, except under
/// `CI=true`, where the test fails.
pub fn udacity_sample() -> Option<PathBuf> {
    let dir = repo().join("../shared/udacity-sample");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{} is missing, and CI=true requires it", dir.display());
    }
    eprintln!("NOTICE: skipping: {} is absent", dir.display());
    None
}

/// A temporary directory holding a config file and a DuckDB warehouse.
pub struct Workspace {
    pub dir: TempDir,
}

impl Workspace {
    /// A workspace whose `[LOCAL]` points at `sources` (with `song_data/`, `log_data/` and
    /// `log_json_path.json` inside), with extra `[WAREHOUSE]` lines.
    pub fn new(sources: &Path, warehouse_extra: &str) -> Workspace {
        let ws = Workspace {
            dir: tempfile::tempdir().unwrap(),
        };
        ws.write_config(sources, warehouse_extra);
        ws
    }

    pub fn write_config(&self, sources: &Path, warehouse_extra: &str) {
        let config = format!(
            "[CLUSTER]\nHOST=\nDB_PASSWORD=sentinel-password-123\n\
             [LOCAL]\nLOG_DATA={0}/log_data\nSONG_DATA={0}/song_data\nLOG_JSONPATH={0}/log_json_path.json\n\
             [WAREHOUSE]\nDUCKDB_PATH=warehouse.duckdb\n{warehouse_extra}\n",
            sources.display()
        );
        fs::write(self.config(), config).unwrap();
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config(&self) -> PathBuf {
        self.path().join("dwh.cfg")
    }

    pub fn duckdb(&self) -> PathBuf {
        self.path().join("warehouse.duckdb")
    }

    /// A command for binary `name` with `--config` set to this workspace's file.
    pub fn cmd(&self, name: &str) -> Command {
        let mut cmd = Command::cargo_bin(name).unwrap();
        cmd.arg("--config")
            .arg(self.config())
            .env_remove("RUST_LOG");
        cmd
    }

    /// Runs create_tables then etl, both expected to succeed; returns etl's stdout.
    pub fn create_and_load(&self) -> String {
        self.cmd("create_tables").assert().success();
        let out = self.cmd("etl").assert().success();
        String::from_utf8(out.get_output().stdout.clone()).unwrap()
    }

    /// Every row of a table, rendered and sorted, for comparing warehouses.
    pub fn dump(&self, table: &str) -> Vec<String> {
        let conn = duckdb::Connection::open(self.duckdb()).unwrap();
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table} ORDER BY ALL"))
            .unwrap();
        let mut rows = stmt.query([]).unwrap();
        let mut out = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            let n = row.as_ref().column_count();
            let cells: Vec<String> = (0..n)
                .map(|i| format!("{:?}", row.get::<_, duckdb::types::Value>(i).unwrap()))
                .collect();
            out.push(cells.join("|"));
        }
        out
    }

    pub fn count(&self, sql: &str) -> i64 {
        let conn = duckdb::Connection::open(self.duckdb()).unwrap();
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }
}

pub const STAR_AND_STAGING: [&str; 8] = [
    "staging_events",
    "staging_songs",
    "load_errors",
    "songplays",
    "users",
    "songs",
    "artists",
    "time",
];
