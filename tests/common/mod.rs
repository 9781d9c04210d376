//! Helpers for the integration tests: a temporary workspace with its own `dwh.cfg` and DuckDB
//! file, the real binaries run against it, and direct reads of the resulting warehouse.

#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;

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

    pub fn write_config_with_cluster(&self, sources: &Path, cluster: &str, warehouse_extra: &str) {
        let config = format!(
            "[CLUSTER]\n{cluster}\n\
             [LOCAL]\nLOG_DATA={0}/log_data\nSONG_DATA={0}/song_data\nLOG_JSONPATH={0}/log_json_path.json\n\
             [WAREHOUSE]\nDUCKDB_PATH=warehouse.duckdb\n{warehouse_extra}\n",
            sources.display()
        );
        fs::write(self.config(), config).unwrap();
        // It holds a password: private, as the README asks (else every step warns).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(self.config(), fs::Permissions::from_mode(0o600)).unwrap();
        }
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

    /// The sorted rows of every compared table (star and staging) of this warehouse.
    pub fn tables(&self) -> Vec<Vec<String>> {
        STAR_AND_STAGING
            .iter()
            .map(|t| self.rows(None, t))
            .collect()
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

    /// Runs create_tables then `etl -v`, both expected to succeed; returns etl's stdout (with
    /// the tables of sources, rows and checks).
    pub fn create_and_load(&self) -> String {
        self.cmd("create_tables").assert().success();
        let out = self.cmd("etl").arg("-v").assert().success();
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

/// One log line with the fields the semantics tests vary; the rest as the app writes them.
#[allow(clippy::too_many_arguments)]
pub fn event(
    user: u32,
    session: u32,
    item: u32,
    level: &str,
    song: &str,
    artist: &str,
    length: f64,
    ts: i64,
) -> String {
    serde_json::json!({
        "artist": artist, "auth": "Logged In", "firstName": "F", "gender": "F",
        "itemInSession": item, "lastName": "L", "length": length, "level": level,
        "location": "Here", "method": "PUT", "page": "NextSong",
        "registration": 1540991795796.0, "sessionId": session, "song": song, "status": 200,
        "ts": ts, "userAgent": "UA", "userId": user.to_string(),
    })
    .to_string()
}

/// A page view of user 5 (not a play).
fn visit(session: u32, item: u32, level: &str, first_name: &str, ts: i64) -> String {
    serde_json::json!({
        "artist": null, "auth": "Logged In", "firstName": first_name, "gender": "M",
        "itemInSession": item, "lastName": "L", "length": null, "level": level,
        "location": "Here", "method": "GET", "page": "Home",
        "registration": 1540991795796.0, "sessionId": session, "song": null, "status": 200,
        "ts": ts, "userAgent": "UA", "userId": "5",
    })
    .to_string()
}

/// Sources that pin the contract's comparisons: a title that differs from another only by a
/// trailing blank, durations exactly 0.01 s apart, a song_id whose duplicate records name
/// different artists, levels that are not exactly free or paid, plays in ISO weeks that
/// straddle a new year, a title longer than its column, and a user whose latest event is
/// decided by every tie-break.
pub fn semantics_sources(dir: &Path) {
    const NOV_15: i64 = 1_542_283_200_000; // 2018-11-15 12:00 UTC, ISO week 46 of 2018
    const DEC_31: i64 = 1_546_257_600_000; // 2018-12-31, ISO week 1 of 2019
    const JAN_2: i64 = 1_546_430_400_000; // 2019-01-02, ISO week 1 of 2019
    const JAN_3_2018: i64 = 1_514_980_800_000; // 2018-01-03, ISO week 1 of 2018
    fs::create_dir_all(dir.join("log_data")).unwrap();
    fs::create_dir_all(dir.join("song_data")).unwrap();
    let long_title = "x".repeat(600);
    let lines = [
        // Exactly 0.01 s from SOB ("Heavy Soul", 100.00): matches it.
        event(1, 1, 1, "free", "Heavy Soul", "X", 100.01, NOV_15),
        // The title with a trailing blank is another song: SOA.
        event(1, 1, 2, "paid", "Heavy Soul ", "X", 100.0, NOV_15 + 1),
        // SOD's kept record names artist N1; a record it did not keep names N2: no match.
        event(1, 1, 3, "paid", "T", "N2", 50.0, NOV_15 + 2),
        event(1, 1, 4, "paid", "T", "N1", 50.0, NOV_15 + 3),
        // "FREE" is not "free": user 2 did not play as free and paid.
        event(2, 2, 1, "free", "Z", "X", 1.0, DEC_31),
        event(2, 2, 2, "FREE", "Z", "X", 1.0, JAN_2),
        event(2, 3, 1, "free", "Z", "X", 1.0, JAN_3_2018),
        // A title longer than the column's 512 bytes: rejected.
        event(3, 4, 1, "free", &long_title, "X", 1.0, NOV_15),
        // User 5's latest event: the greatest ts, then item, then session, then the first
        // level, then the first first name. Only "Abe" passes every tie-break.
        visit(9, 1, "paid", "Old", NOV_15 + 10),
        visit(4, 1, "paid", "Low", NOV_15 + 20),
        visit(3, 2, "paid", "Sess", NOV_15 + 20),
        visit(4, 2, "paid", "Zed", NOV_15 + 20),
        visit(4, 2, "free", "Yan", NOV_15 + 20),
        visit(4, 2, "free", "Abe", NOV_15 + 20),
    ];
    fs::write(dir.join("log_data/events.json"), lines.join("\n")).unwrap();
    let song = |id: &str, artist_id: &str, artist: &str, title: &str, duration: f64| {
        serde_json::json!({
            "num_songs": 1, "artist_id": artist_id, "artist_latitude": null,
            "artist_longitude": null, "artist_location": "", "artist_name": artist,
            "song_id": id, "title": title, "duration": duration, "year": 2000,
        })
        .to_string()
    };
    let songs = [
        ("a.json", song("SOA", "AR9", "X", "Heavy Soul ", 100.0)),
        ("b.json", song("SOB", "AR9", "X", "Heavy Soul", 100.0)),
        ("d1.json", song("SOD", "AR1", "N1", "T", 50.0)),
        ("d2.json", song("SOD", "AR2", "N2", "T", 50.0)),
    ];
    for (name, text) in songs {
        fs::write(dir.join("song_data").join(name), text).unwrap();
    }
    fs::write(
        dir.join("log_json_path.json"),
        sparkify::gen_data::LOG_JSONPATH,
    )
    .unwrap();
}

/// Checks a warehouse loaded from [`semantics_sources`] (with MAX_ERRORS at least 1), through
/// the workspace's own `analysis` and the library's `rows`, on `engine`.
pub fn assert_semantics(ws: &Workspace, engine: &str) {
    let plays = ws.rows(
        Some(engine),
        "(SELECT item_in_session, song_id, artist_id FROM songplays WHERE user_id = 1) p",
    );
    assert_eq!(
        plays,
        [
            "[Int(1), Text(\"SOB\"), Text(\"AR9\")]",
            "[Int(2), Text(\"SOA\"), Text(\"AR9\")]",
            "[Int(3), Null, Null]",
            "[Int(4), Text(\"SOD\"), Text(\"AR1\")]",
        ],
        "{engine}"
    );
    let user = ws.rows(
        Some(engine),
        "(SELECT first_name, level FROM users WHERE user_id = 5) u",
    );
    assert_eq!(user, ["[Text(\"Abe\"), Text(\"free\")]"], "{engine}");
    let errors = ws.rows(Some(engine), "(SELECT reason FROM load_errors) e");
    assert_eq!(errors.len(), 1, "{engine}: {errors:?}");
    assert!(
        errors[0].contains("600 bytes long, more than the column's width of 512"),
        "{engine}: {errors:?}"
    );
    let out = ws
        .cmd("analysis")
        .args([
            "--format",
            "json",
            "--engine",
            engine,
            "--query",
            "both_levels",
            "--query",
            "plays_by_week",
        ])
        .assert()
        .success();
    let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let answer = |name: &str| {
        doc["answers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap()["rows"]
            .clone()
    };
    let both = answer("both_levels");
    assert_eq!(both.as_array().unwrap().len(), 1, "{engine}: {both}");
    assert_eq!(both[0]["user_id"], 1, "{engine}: {both}");
    let weeks: Vec<(i64, i64, i64)> = answer("plays_by_week")
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["iso_year"].as_i64().unwrap(),
                r["week"].as_i64().unwrap(),
                r["plays"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        weeks,
        [(2018, 1, 1), (2018, 46, 4), (2019, 1, 2)],
        "{engine}"
    );
}

/// A generated dataset in `bucket` with, next to the data, what a real bucket holds and no
/// engine may read as data: a sibling prefix of valid songs (`song_data_old/`), a README and a
/// `_SUCCESS` marker under `song_data/`, and the JSONPaths file under `log_data/` (set
/// `LOG_JSONPATH` to `log_data/log_json_path.json`). `clean` gets the same dataset alone.
pub fn bucket_with_more_than_data(bucket: &Path, clean: &Path) {
    for out in [bucket, clean] {
        sparkify::gen_data::generate(&sparkify::gen_data::GenOptions {
            songs: 40,
            events: 300,
            days: 3,
            seed: 11,
            out: out.to_path_buf(),
            force: true,
        })
        .unwrap();
    }
    let song = fs::read_to_string(
        walkdir::WalkDir::new(bucket.join("song_data"))
            .into_iter()
            .map(|e| e.unwrap().into_path())
            .find(|p| p.is_file())
            .unwrap(),
    )
    .unwrap();
    let write = |path: PathBuf, text: &str| {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    };
    write(
        bucket.join("song_data_old/A/TROLD.json"),
        &song.replace("\"song_id\": \"", "\"song_id\": \"OLD"),
    );
    write(bucket.join("song_data/README.md"), "the songs");
    write(bucket.join("song_data/_SUCCESS"), "");
    fs::copy(
        bucket.join("log_json_path.json"),
        bucket.join("log_data/log_json_path.json"),
    )
    .unwrap();
}

/// A log whose lines hold a NUL inside a string, an event time no engine can convert, and a
/// crash-truncated, zero-filled tail; plus an empty song file and a song file with a broken
/// object between two good ones.
pub fn hostile_sources(dir: &Path) {
    sources_with_log_lines(
        dir,
        concat!(
            r#"{"ts": 1543537400000, "sessionId": 9, "itemInSession": 1, "artist": "A\u0000B", "userId": "5"}"#,
            "\n",
            r#"{"ts": 10000000000000000, "sessionId": 9, "itemInSession": 2, "userId": "5"}"#,
            "\n",
            r#"{"ts": 1543537500000, "sessionId": 9, "itemInSession": 3, "page": "Home", "userId": "5"}"#,
            "\n",
        ),
    );
    let log = dir.join("log_data/2018/11/2018-11-01-events.json");
    let mut file = fs::OpenOptions::new().append(true).open(&log).unwrap();
    file.write_all(b"{\"ts\": 15435376").unwrap();
    file.write_all(&[0u8; 300]).unwrap();
    fs::write(dir.join("song_data/A/B/C/EMPTY.json"), "  \n").unwrap();
    fs::write(
        dir.join("song_data/A/B/C/MIXED.json"),
        "{\"song_id\": \"SO2\", \"artist_id\": \"AR2\"}\n{\"song_id\": \"SO3\", oops\n{\"song_id\": \"SO4\", \"artist_id\": \"AR4\"}\n",
    )
    .unwrap();
}

/// What `load_errors` must hold for [`hostile_sources`], on every engine: (file name, line,
/// start of the reason).
pub const HOSTILE_REJECTS: [(&str, Option<i64>, &str); 5] = [
    (
        "2018-11-01-events.json",
        Some(2),
        "artist ($['artist']): holds a NUL character",
    ),
    (
        "2018-11-01-events.json",
        Some(3),
        "ts ($['ts']): 10000000000000000 is outside years 1900 to 9999",
    ),
    ("2018-11-01-events.json", Some(5), "not valid JSON"),
    ("EMPTY.json", Some(1), "empty file"),
    ("MIXED.json", Some(2), "not valid JSON"),
];

/// Starts `etl -v` on `config` and kills it (SIGKILL) as soon as its log on stderr shows
/// `marker`; returns whether it was killed before it ended by itself.
pub fn kill_etl_at(config: &Path, extra: &[&str], marker: &str) -> bool {
    interrupt_etl_at(config, extra, marker, "KILL").is_some_and(|run| run.code != Some(0))
}

/// What an interrupted `etl` did: its exit code, everything it wrote on stderr, and how long
/// it took to exit after the signal.
pub struct Interrupted {
    pub code: Option<i32>,
    pub stderr: String,
    pub exit_after_signal: std::time::Duration,
}

/// The exit code of a run ended by `signal` (`INT` or `TERM`): 128 + its number, as a shell
/// reports it.
pub fn interrupted_exit_code(signal: &str) -> i32 {
    match signal {
        "INT" => 130,
        "TERM" => 143,
        other => panic!("no exit code for SIG{other}"),
    }
}

/// Asserts that `run`, stopped by `signal`, stopped as an interrupted run must: exit 128 + the
/// signal's number, the message that nothing was committed, no panic, and soon after it.
pub fn assert_interrupted(run: &Interrupted, signal: &str, what: &str) {
    assert_eq!(
        run.code,
        Some(interrupted_exit_code(signal)),
        "{what}: {}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("interrupted: nothing of this run was committed"),
        "{what}: {}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{what}: {}", run.stderr);
    assert!(
        run.exit_after_signal < std::time::Duration::from_secs(10),
        "{what}: took {:?} to stop",
        run.exit_after_signal
    );
}

/// Starts `etl -v` on `config` and sends it `signal` (`INT` as Ctrl-C does, or `TERM`) as soon
/// as its log on stderr shows `marker`; `None` when it ended before showing it.
pub fn interrupt_etl_at(
    config: &Path,
    extra: &[&str],
    marker: &str,
    signal: &str,
) -> Option<Interrupted> {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("etl"))
        .arg("--config")
        .arg(config)
        .arg("-v")
        .args(extra)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut stderr = String::new();
    let mut signalled = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        stderr.push_str(&line);
        stderr.push('\n');
        if line.contains(marker) {
            let sent = std::process::Command::new("kill")
                .args([&format!("-{signal}"), &child.id().to_string()])
                .status()
                .unwrap();
            assert!(sent.success());
            signalled = Some(std::time::Instant::now());
            break;
        }
    }
    for line in lines {
        stderr.push_str(&line.unwrap());
        stderr.push('\n');
    }
    let status = child.wait().unwrap();
    Some(Interrupted {
        code: status.code(),
        stderr,
        exit_after_signal: signalled?.elapsed(),
    })
}

/// A temporary directory holding a `gen_data` dataset of `songs` song files and `events`
/// events over 30 days.
pub fn generated(songs: usize, events: usize, seed: u64) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    sparkify::gen_data::generate(&sparkify::gen_data::GenOptions {
        songs,
        events,
        days: 30,
        seed,
        out: dir.path().to_path_buf(),
        force: true,
    })
    .unwrap();
    dir
}

/// Loads [`semantics_sources`] into the workspace's warehouse: its level "FREE" is refused by
/// the quality checks (the run fails, naming the check and the row, and commits nothing), so it
/// is loaded with `--no-checks`.
pub fn load_semantics(ws: &Workspace) {
    ws.cmd("create_tables").assert().success();
    let refused = ws.cmd("etl").assert().code(1);
    let stderr = String::from_utf8_lossy(&refused.get_output().stderr).into_owned();
    assert!(
        stderr.contains("accepted_values(songplays.level: free, paid): 1 of 7 rows fail"),
        "{stderr}"
    );
    assert!(stderr.contains("level=FREE"), "{stderr}");
    assert!(stderr.contains("Nothing was committed"), "{stderr}");
    assert!(
        ws.rows(None, "songplays").is_empty(),
        "a refused load committed plays"
    );
    ws.cmd("etl")
        .arg("--no-checks")
        .assert()
        .success()
        .stdout(predicates::str::contains("quality checks skipped"));
}

/// Statements that make `check` fail in a warehouse loaded from the Udacity sample (one play
/// matched to a song), whatever the engine: the keys and NOT NULL of the table are dropped
/// first where the engine enforces them, as in a warehouse built by hand or by an older tool.
pub fn seed_failure(
    check: &sparkify::checks::Check,
    dialect: sparkify::sql::Dialect,
) -> Vec<String> {
    use sparkify::checks::{Accepted, Check};
    let table = check.table().name;
    let mut seed = Vec::new();
    if dialect == sparkify::sql::Dialect::Postgres {
        seed.push(format!(
            "DO $$ DECLARE c record; BEGIN FOR c IN SELECT conname FROM pg_constraint \
             WHERE conrelid = '{table}'::regclass AND contype IN ('p', 'u') LOOP \
             EXECUTE 'ALTER TABLE {table} DROP CONSTRAINT ' || quote_ident(c.conname); \
             END LOOP; END $$"
        ));
    }
    match *check {
        Check::NotNull { column, .. } => {
            seed.push(format!(
                "ALTER TABLE {table} ALTER COLUMN {column} DROP NOT NULL"
            ));
            seed.push(format!(
                "UPDATE {table} SET {column} = NULL \
                 WHERE {column} = (SELECT MIN({column}) FROM {table})"
            ));
        }
        // A row held twice.
        Check::Unique { .. } => {
            seed.push(format!("INSERT INTO {table} SELECT * FROM {table} LIMIT 1"));
        }
        // The play's song and artist both exist, but the artist is another song's.
        Check::Relationship { columns, .. } if columns.len() > 1 => {
            seed.push(
                "UPDATE songplays SET artist_id = (SELECT MIN(a.artist_id) FROM artists a \
                 WHERE a.artist_id <> songplays.artist_id) WHERE song_id IS NOT NULL"
                    .into(),
            );
        }
        // The row a child refers to removed.
        Check::Relationship {
            columns, parent, ..
        } => {
            let column = columns[0];
            seed.push(format!(
                "DELETE FROM {parent} WHERE {column} = \
                 (SELECT MIN({column}) FROM {table} WHERE {column} IS NOT NULL)",
                parent = parent.name
            ));
        }
        Check::AcceptedValues {
            column, accepted, ..
        } => {
            let wrong = match accepted {
                Accepted::Texts(_) => "'premium'".to_string(),
                Accepted::Range(_, high) => (high + 1).to_string(),
            };
            seed.push(format!(
                "UPDATE {table} SET {column} = {wrong} \
                 WHERE {column} = (SELECT MIN({column}) FROM {table})"
            ));
        }
        // The latest play lost.
        Check::Reconciliation => seed.push(
            "DELETE FROM songplays WHERE songplay_id = (SELECT MAX(songplay_id) FROM songplays)"
                .into(),
        ),
    }
    seed
}

/// Runs the `check` binary of `ws`, expecting `check` (and maybe others) to fail with at least
/// one offending row shown.
pub fn assert_check_fails(ws: &Workspace, check: &sparkify::checks::Check) {
    let out = ws.cmd("check").arg("-q").assert().code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    let name = check.name();
    let mut lines = stderr
        .lines()
        .skip_while(|l| !l.starts_with(&format!("  {name}: ")));
    assert!(
        lines.next().is_some(),
        "{name} did not fail on its seeded failure:\n{stderr}\n{stdout}"
    );
    let row = lines.next().unwrap_or_default();
    assert!(
        row.starts_with("    ") && row.contains('='),
        "{name} shows no offending row:\n{stderr}"
    );
    assert!(stdout.contains(&name), "the table lacks {name}:\n{stdout}");
}

/// Copies the source tree `from` into `to` (created), the files for which `keep` holds.
pub fn copy_tree(from: &Path, to: &Path, keep: &dyn Fn(&Path) -> bool) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let relative = entry.path().strip_prefix(from).unwrap();
        let target = to.join(relative);
        if entry.file_type().is_dir() {
            fs::create_dir_all(&target).unwrap();
        } else if keep(relative) {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A workspace of the engine under test over `sources`, with whatever keeps its database alive.
pub type NewWorkspace<'a> = &'a dyn Fn(&Path) -> (Workspace, Box<dyn std::any::Any>);

/// Loads `sources` at once into a fresh warehouse and asserts that `ws` holds the same rows in
/// every compared table (songplay_id included).
fn assert_same_as_full_load(
    ws: &Workspace,
    sources: &Path,
    new_workspace: NewWorkspace,
    when: &str,
) {
    let (full, _db) = new_workspace(sources);
    full.create_and_load();
    for (table, (incremental, full)) in STAR_AND_STAGING
        .iter()
        .zip(ws.tables().into_iter().zip(full.tables()))
    {
        assert_eq!(incremental.len(), full.len(), "{when}: rows of {table}");
        assert!(
            incremental == full,
            "{when}: {table} differs from a full load"
        );
    }
}

fn etl_stdout(ws: &Workspace, args: &[&str]) -> String {
    let out = ws.cmd("etl").args(args).assert().success();
    String::from_utf8(out.get_output().stdout.clone()).unwrap()
}

/// The invariants of incremental loads, on the engine `new_workspace` gives:
/// - days 1..28 (one day's file missing half its lines), then day 29, then the rest (day 30,
///   the missing half as a late file whose plays fall among the loaded ones, and duplicates of
///   loaded events that win their tie-breaks) give the tables of loading everything at once;
/// - a run with nothing new changes nothing and says so;
/// - a changed old file gives the tables of a full load with the changed file;
/// - a new song file gives the tables of a full load with it.
pub fn assert_incremental_invariants(new_workspace: NewWorkspace) {
    let generated = generated(120, 3000, 7);
    let all = generated.path();
    let log = |day: u32| PathBuf::from(format!("log_data/2018/11/2018-11-{day:02}-events.json"));
    let sources = tempfile::tempdir().unwrap();
    let src = sources.path();
    copy_tree(all, src, &|p| p != log(29) && p != log(30) && p != log(10));
    // Day 10: the even lines now, the odd ones later, in a file of their own.
    let day10 = fs::read_to_string(all.join(log(10))).unwrap();
    let lines: Vec<&str> = day10.lines().collect();
    let half = |parity: usize| -> String {
        lines
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 2 == parity)
            .map(|(_, l)| format!("{l}\n"))
            .collect()
    };
    fs::write(src.join(log(10)), half(0)).unwrap();

    let (ws, _db) = new_workspace(src);
    ws.cmd("create_tables").assert().success();
    let first = etl_stdout(&ws, &[]);
    assert!(
        first.contains("load: full refresh (the ledger is empty"),
        "{first}"
    );
    let files = walkdir::WalkDir::new(src).into_iter().filter(|e| {
        e.as_ref()
            .unwrap()
            .path()
            .extension()
            .is_some_and(|x| x == "json")
    });
    let loaded = ws.rows(None, "loaded_files").len();
    assert_eq!(
        loaded,
        files.count(),
        "a ledger row per source file, and one for the JSONPaths mapping"
    );

    // Day 29 arrives: its plays all come after the loaded ones, so they only continue the
    // numbering.
    fs::copy(all.join(log(29)), src.join(log(29))).unwrap();
    let appended = etl_stdout(&ws, &[]);
    assert!(
        appended.contains("load: incremental, only the new files read; files: 1 new, 0 changed"),
        "{appended}"
    );
    assert_same_as_full_load(&ws, src, new_workspace, "days 1..28, then day 29");

    // The rest arrives: day 30, the late half of day 10, and duplicates of day 5's plays whose
    // level is the other one (the first level in byte order wins a tie, so half of them win).
    fs::copy(all.join(log(30)), src.join(log(30))).unwrap();
    fs::write(src.join("log_data/2018/11/2018-11-10-late.json"), half(1)).unwrap();
    let day5 = fs::read_to_string(all.join(log(5))).unwrap();
    let flipped: String = day5
        .lines()
        .filter(|l| l.contains("\"NextSong\""))
        .take(40)
        .map(|l| {
            let flip = if l.contains("\"level\":\"free\"") {
                l.replace("\"level\":\"free\"", "\"level\":\"paid\"")
            } else {
                l.replace("\"level\":\"paid\"", "\"level\":\"free\"")
            };
            format!("{flip}\n")
        })
        .collect();
    assert!(
        flipped.contains("\"level\":\"free\""),
        "day 5 has plays of both levels"
    );
    fs::write(src.join("log_data/2018/11/2018-11-05-resent.json"), flipped).unwrap();
    let second = etl_stdout(&ws, &[]);
    assert!(
        second.contains("load: incremental, only the new files read; files: 3 new, 0 changed"),
        "{second}"
    );
    assert_same_as_full_load(&ws, src, new_workspace, "then the rest");

    let before = ws.tables();
    let third = etl_stdout(&ws, &[]);
    assert!(third.contains("load: nothing new"), "{third}");
    assert!(
        ws.tables() == before,
        "a run with nothing new changed the warehouse"
    );

    // An old file changes: one more play on day 3, and one line less.
    let day3 = fs::read_to_string(src.join(log(3))).unwrap();
    let mut day3_lines: Vec<String> = day3.lines().skip(1).map(str::to_string).collect();
    let extra = day3_lines
        .iter()
        .find(|l| l.contains("\"NextSong\""))
        .unwrap()
        .replace("\"itemInSession\":", "\"itemInSession\":9");
    day3_lines.push(extra);
    fs::write(src.join(log(3)), day3_lines.join("\n") + "\n").unwrap();
    let fourth = etl_stdout(&ws, &[]);
    assert!(
        fourth.contains("load: full refresh ([log_data] 2018/11/2018-11-03-events.json changed"),
        "{fourth}"
    );
    assert_same_as_full_load(&ws, src, new_workspace, "a changed old file");

    // A new song file: the catalogue changes, so the plays are matched again.
    let song = fs::read_dir(src.join("song_data/A/A/A"))
        .ok()
        .and_then(|mut d| d.next())
        .map(|e| e.unwrap().path());
    let song = song.unwrap_or_else(|| {
        walkdir::WalkDir::new(src.join("song_data"))
            .into_iter()
            .map(|e| e.unwrap().into_path())
            .find(|p| p.is_file())
            .unwrap()
    });
    let text = fs::read_to_string(&song).unwrap();
    fs::write(
        song.with_file_name("TRNEWSONG.json"),
        text.replace("\"song_id\": \"", "\"song_id\": \"NEW"),
    )
    .unwrap();
    let fifth = etl_stdout(&ws, &[]);
    assert!(fifth.contains("load: incremental"), "{fifth}");
    assert_same_as_full_load(&ws, src, new_workspace, "a new song file");
}
