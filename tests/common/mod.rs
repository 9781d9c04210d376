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
        Self::with_cluster(
            sources,
            "HOST=\nDB_PASSWORD=sentinel-password-123",
            warehouse_extra,
        )
    }

    /// A workspace whose `[CLUSTER]` section holds `cluster` (lines of `KEY=value`).
    pub fn with_cluster(sources: &Path, cluster: &str, warehouse_extra: &str) -> Workspace {
        let ws = Workspace {
            dir: tempfile::tempdir().unwrap(),
        };
        ws.write_config_with_cluster(sources, cluster, warehouse_extra);
        ws
    }

    pub fn write_config(&self, sources: &Path, warehouse_extra: &str) {
        self.write_config_with_cluster(
            sources,
            "HOST=\nDB_PASSWORD=sentinel-password-123",
            warehouse_extra,
        );
    }

    fn write_config_with_cluster(&self, sources: &Path, cluster: &str, warehouse_extra: &str) {
        let config = format!(
            "[CLUSTER]\n{cluster}\n\
             [LOCAL]\nLOG_DATA={0}/log_data\nSONG_DATA={0}/song_data\nLOG_JSONPATH={0}/log_json_path.json\n\
             [WAREHOUSE]\nDUCKDB_PATH=warehouse.duckdb\n{warehouse_extra}\n",
            sources.display()
        );
        fs::write(self.config(), config).unwrap();
    }

    /// Every row of `table` in the warehouse this workspace's config selects (with `engine`
    /// overriding it), through the library, sorted in Rust so no collation matters.
    pub fn rows(&self, engine: Option<&str>, table: &str) -> Vec<String> {
        let mut config = sparkify::config::Config::load(&self.config()).unwrap();
        if let Some(engine) = engine {
            config.warehouse.engine = sparkify::config::EngineChoice::parse(engine).unwrap();
        }
        let mut warehouse = sparkify::warehouse::open(&config).unwrap();
        let result = warehouse.query(&format!("SELECT * FROM {table}")).unwrap();
        let mut rows: Vec<String> = result.rows.iter().map(|r| format!("{r:?}")).collect();
        rows.sort();
        rows
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

/// A small source tree holding one good event, one good song and the given extra log lines.
pub fn sources_with_log_lines(dir: &Path, extra_lines: &str) {
    let good_event = r#"{"artist":"A","auth":"Logged In","firstName":"J","gender":"M","itemInSession":0,"lastName":"B","length":100.0,"level":"free","location":"X","method":"PUT","page":"NextSong","registration":1540991795796.0,"sessionId":829,"song":"S","status":200,"ts":1543537327796,"userAgent":"UA","userId":"91"}"#;
    fs::create_dir_all(dir.join("log_data/2018/11")).unwrap();
    fs::create_dir_all(dir.join("song_data/A/B/C")).unwrap();
    fs::write(
        dir.join("log_data/2018/11/2018-11-01-events.json"),
        format!("{good_event}\n{extra_lines}"),
    )
    .unwrap();
    fs::write(
        dir.join("song_data/A/B/C/TRABC.json"),
        r#"{"num_songs": 1, "artist_id": "AR1", "artist_latitude": null, "artist_longitude": null, "artist_location": "", "artist_name": "A", "song_id": "SO1", "title": "S", "duration": 100.005, "year": 0}"#,
    )
    .unwrap();
    fs::write(
        dir.join("log_json_path.json"),
        sparkify::gen_data::LOG_JSONPATH,
    )
    .unwrap();
}

pub const BAD_LINES: &str =
    "this is not json\n[1, 2, 3]\n{\"ts\": \"abc\", \"sessionId\": 1, \"itemInSession\": 2}\n";
