//! The conditions users run the toolkit in, through the real binaries on DuckDB: a warehouse
//! file that holds other tables, cron in another directory with another spelling of
//! `--config`, files touched or appended to, a reader beside a scheduled load, `-q`, and a
//! misspelt section. (The PostgreSQL side of the same conditions is in `tests/postgres.rs`.)

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::Workspace;

/// A workspace holding a copy of the bundled sample under `data/`, and a config naming it by
/// paths relative to the config file, as a user's own `dwh.cfg` does.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new() -> Project {
        let project = Project {
            dir: tempfile::tempdir().unwrap(),
        };
        copy_dir(&common::repo().join("data"), &project.path().join("data"));
        project.write_config("");
        project
    }

    fn write_config(&self, extra: &str) {
        fs::write(
            self.path().join("dwh.cfg"),
            format!(
                "[CLUSTER]\nHOST=\n\n[LOCAL]\nLOG_DATA = data/log_data\nSONG_DATA = data/song_data\n\
                 LOG_JSONPATH = data/log_json_path.json\n\n[WAREHOUSE]\n{extra}\n"
            ),
        )
        .unwrap();
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn duckdb(&self) -> PathBuf {
        self.path().join("sparkify.duckdb")
    }

    /// Binary `name` run from `cwd` with `--config config`, no terminal, no RUST_LOG.
    fn run(&self, name: &str, cwd: &Path, config: &Path, args: &[&str]) -> Run {
        let out = Command::new(assert_cmd::cargo::cargo_bin(name))
            .current_dir(cwd)
            .arg("--config")
            .arg(config)
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Binary `name` run in the project's directory with `--config dwh.cfg`.
    fn here(&self, name: &str, args: &[&str]) -> Run {
        self.run(name, self.path(), Path::new("dwh.cfg"), args)
    }

    fn count(&self, sql: &str) -> i64 {
        let conn = duckdb::Connection::open(self.duckdb()).unwrap();
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    fn texts(&self, sql: &str) -> Vec<String> {
        let conn = duckdb::Connection::open(self.duckdb()).unwrap();
        let mut stmt = conn.prepare(sql).unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
        rows.map(Result::unwrap).collect()
    }

    /// The star schema and staging, each table's rows sorted, for comparing warehouses.
    fn tables(&self) -> Vec<Vec<String>> {
        let ws = Workspace {
            dir: tempfile::tempdir().unwrap(),
        };
        fs::copy(self.duckdb(), ws.duckdb()).unwrap();
        common::STAR_AND_STAGING
            .iter()
            .filter(|t| **t != "load_errors")
            .map(|t| ws.dump(t))
            .collect()
    }
}

#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> Run {
        assert_eq!(self.code, Some(0), "{self:#?}");
        self
    }

    fn failed(self) -> Run {
        assert_eq!(self.code, Some(1), "{self:#?}");
        self
    }

    /// The `load:` line of an etl summary.
    fn load_line(&self) -> &str {
        self.stdout
            .lines()
            .find(|l| l.starts_with("load: "))
            .unwrap_or_else(|| panic!("no load line in {self:#?}"))
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let target = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            fs::create_dir_all(&target).unwrap();
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Puts an application's own table into the DuckDB file.
fn application_table(file: &Path, sql: &str) {
    let conn = duckdb::Connection::open(file).unwrap();
    conn.execute_batch(sql).unwrap();
}

#[test]
fn a_table_the_toolkit_did_not_create_is_never_dropped_or_written() {
    let project = Project::new();
    application_table(
        &project.duckdb(),
        "CREATE TABLE users (id INTEGER, email VARCHAR); \
         INSERT INTO users VALUES (1, 'a@example.com'), (2, 'b@example.com')",
    );
    for (binary, args) in [("create_tables", &["--yes"][..]), ("etl", &[][..])] {
        let run = project.here(binary, args).failed();
        assert!(
            run.stderr.contains("users") && run.stderr.contains("did not create"),
            "{binary}: {run:#?}"
        );
        assert!(
            run.stderr.contains("nothing was dropped or changed"),
            "{run:#?}"
        );
        assert!(run.stderr.contains("DUCKDB_PATH"), "{run:#?}");
        assert_eq!(project.count("SELECT COUNT(*) FROM users"), 2, "{binary}");
        assert_eq!(
            project.count(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'songplays'"
            ),
            0,
            "{binary} created tables beside a foreign one"
        );
    }
}

#[test]
fn etl_alone_creates_the_warehouse_and_create_tables_starts_over_only_when_told() {
    let project = Project::new();
    let dry = project.here("etl", &["--dry-run"]).ok();
    assert!(
        dry.stdout
            .contains("load (would be): full refresh (no warehouse yet: the first run creates it)"),
        "{dry:#?}"
    );
    assert!(!project.duckdb().exists(), "the dry run made the warehouse");
    // The everyday command: etl alone, into a warehouse that does not exist yet.
    let run = project.here("etl", &[]).ok();
    assert!(run.stdout.contains("created 11 tables"), "{run:#?}");
    let plays = project.count("SELECT COUNT(*) FROM songplays");
    assert!(plays > 0);
    // Every table carries the toolkit's mark.
    let unmarked = project.count(
        "SELECT COUNT(*) FROM duckdb_tables() WHERE comment IS NULL \
         OR comment NOT LIKE 'sparkify warehouse toolkit%'",
    );
    assert_eq!(unmarked, 0);
    project.here("analysis", &["--query", "song_count"]).ok();

    // create_tables on tables holding rows, with no terminal to ask: refused, nothing dropped.
    let run = project.here("create_tables", &[]).failed();
    assert!(run.stderr.contains("--yes"), "{run:#?}");
    assert!(
        run.stderr
            .contains(&format!("songplays ({} rows)", thousands(plays))),
        "{run:#?}"
    );
    assert_eq!(project.count("SELECT COUNT(*) FROM songplays"), plays);

    // With --yes: dropped, said with the rows each held, and empty.
    let run = project.here("create_tables", &["--yes"]).ok();
    assert!(
        run.stdout
            .contains(&format!("songplays ({} rows)", thousands(plays))),
        "{run:#?}"
    );
    assert!(run.stdout.contains("created 11 empty tables"), "{run:#?}");
    assert_eq!(project.count("SELECT COUNT(*) FROM songplays"), 0);
    // Empty tables are dropped without asking.
    project.here("create_tables", &[]).ok();
}

fn thousands(n: i64) -> String {
    sparkify::report::thousands(n)
}

#[test]
fn tables_made_before_the_mark_are_recognised_by_their_columns_and_marked() {
    let project = Project::new();
    // A warehouse as an earlier release made it: the toolkit's tables, no comments.
    {
        let conn = duckdb::Connection::open(project.duckdb()).unwrap();
        for table in sparkify::schema::ALL_TABLES {
            conn.execute_batch(&sparkify::sql::create_table(
                table,
                sparkify::sql::Dialect::DuckDb,
            ))
            .unwrap();
        }
    }
    project.here("etl", &[]).ok();
    let marked = project.count(
        "SELECT COUNT(*) FROM duckdb_tables() WHERE comment LIKE 'sparkify warehouse toolkit%'",
    );
    assert_eq!(marked, sparkify::schema::ALL_TABLES.len() as i64);
}

#[test]
fn the_ledger_knows_each_file_by_its_place_under_its_root_whatever_the_working_directory() {
    let project = Project::new();
    let config = project.path().join("dwh.cfg");
    let elsewhere = tempfile::tempdir().unwrap();
    let first = project.here("etl", &[]).ok();
    assert!(first.load_line().contains("full refresh"), "{first:#?}");
    let events = project.count("SELECT COUNT(*) FROM staging_events");
    let files = project.count("SELECT COUNT(*) FROM loaded_files WHERE source <> 'log_jsonpath'");
    assert_eq!(files, 180);
    let before = project.tables();
    // Three working directories, two spellings of --config.
    let runs = [
        (elsewhere.path().to_path_buf(), config.clone()),
        (project.path().join("data"), PathBuf::from("../dwh.cfg")),
        (project.path().to_path_buf(), PathBuf::from("./dwh.cfg")),
    ];
    for (cwd, config) in &runs {
        let run = project.run("etl", cwd, config, &[]).ok();
        assert!(
            run.load_line().starts_with("load: nothing new")
                && run.load_line().contains("180 unchanged"),
            "from {}: {run:#?}",
            cwd.display()
        );
        assert_eq!(project.count("SELECT COUNT(*) FROM staging_events"), events);
        assert_eq!(
            project.count("SELECT COUNT(*) FROM loaded_files WHERE source <> 'log_jsonpath'"),
            files
        );
    }
    // Named relative to the root: no directory of the run's in them.
    let names = project.texts("SELECT file FROM loaded_files WHERE source = 'log_data' ORDER BY 1");
    assert_eq!(names[0], "2018/11/2018-11-01-events.json");
    assert_eq!(project.tables(), before);
}

#[test]
fn entries_an_earlier_release_wrote_are_renamed_not_reloaded() {
    let project = Project::new();
    project.here("etl", &[]).ok();
    let before = project.tables();
    // As an earlier release wrote them, from the project's directory: the path the run saw,
    // and the modification time alone.
    {
        let conn = duckdb::Connection::open(project.duckdb()).unwrap();
        conn.execute_batch(
            "UPDATE loaded_files SET file = './data/' || source || '/' || file, \
             version = split_part(version, ' ', 1) WHERE source <> 'log_jsonpath'",
        )
        .unwrap();
    }
    let elsewhere = tempfile::tempdir().unwrap();
    let run = project
        .run(
            "etl",
            elsewhere.path(),
            &project.path().join("dwh.cfg"),
            &[],
        )
        .ok();
    assert!(
        run.load_line().starts_with("load: nothing new") && !run.load_line().contains("no longer"),
        "{run:#?}"
    );
    let old_names = project.texts("SELECT file FROM loaded_files WHERE file LIKE './data/%'");
    assert!(old_names.is_empty(), "{old_names:?}");
    assert_eq!(
        project.count("SELECT COUNT(*) FROM loaded_files WHERE source <> 'log_jsonpath'"),
        180
    );
    assert_eq!(project.tables(), before);
}

/// Sets a file's modification time to `seconds` after 2020-01-01, as `touch -d` would.
fn set_mtime(path: &Path, seconds: u64) {
    let time = std::time::UNIX_EPOCH + Duration::from_secs(1_577_836_800 + seconds);
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(time)
        .unwrap();
}

#[test]
fn a_touched_file_is_not_a_change_and_a_changed_one_is_named() {
    let project = Project::new();
    project.here("etl", &[]).ok();
    let log = project
        .path()
        .join("data/log_data/2018/11/2018-11-05-events.json");
    let song = project
        .path()
        .join("data/song_data/A/A/A/TRAAA0SA4MGJEQY7TY.json");
    set_mtime(&log, 100);
    set_mtime(&song, 200);
    let run = project.here("etl", &[]).ok();
    assert!(
        run.load_line().starts_with("load: nothing new") && run.load_line().contains("2 touched"),
        "{run:#?}"
    );
    // The ledger keeps the new time: the next run hashes nothing again.
    let run = project.here("etl", &[]).ok();
    assert!(!run.load_line().contains("touched"), "{run:#?}");

    // Same size, other bytes: a change, named.
    let text = fs::read_to_string(&song).unwrap();
    let changed = text.replacen("\"year\":2009", "\"year\":2010", 1);
    assert_eq!(changed.len(), text.len(), "the test keeps the size");
    assert_ne!(changed, text);
    fs::write(&song, changed).unwrap();
    let run = project.here("etl", &[]).ok();
    assert!(
        run.load_line()
            .contains("full refresh ([song_data] A/A/A/TRAAA0SA4MGJEQY7TY.json changed"),
        "{run:#?}"
    );
}

#[test]
fn a_grown_log_is_read_from_where_it_ended_and_gives_what_a_full_load_gives() {
    let project = Project::new();
    project.here("etl", &["--max-errors", "5"]).ok();
    let log = project
        .path()
        .join("data/log_data/2018/11/2018-11-30-events.json");
    let lines_before = fs::read_to_string(&log).unwrap().lines().count();
    let last = fs::read_to_string(&log)
        .unwrap()
        .lines()
        .rev()
        .find(|l| l.contains("NextSong"))
        .unwrap()
        .to_string();
    // Two new plays (the same event a second later, in a later session) and one bad line.
    let mut event: serde_json::Value = serde_json::from_str(&last).unwrap();
    let mut appended = String::new();
    for item in [1, 2] {
        event["ts"] = serde_json::json!(event["ts"].as_i64().unwrap() + 1000);
        event["sessionId"] = serde_json::json!(99_999);
        event["itemInSession"] = serde_json::json!(item);
        appended.push_str(&format!("{event}\n"));
    }
    appended.push_str("not json\n");
    let mut text = fs::read_to_string(&log).unwrap();
    assert!(text.ends_with('\n'));
    text.push_str(&appended);
    fs::write(&log, text).unwrap();
    let events = project.count("SELECT COUNT(*) FROM staging_events");
    let old_size = fs::metadata(&log).unwrap().len() - appended.len() as u64;

    // The dry run says what the run will do, from the ledger, and changes nothing.
    let dry = project.here("etl", &["--dry-run"]).ok();
    assert!(
        dry.stdout.contains("load (would be): incremental")
            && dry.stdout.contains("1 grown")
            && dry.stdout.contains("files it would read (1):")
            && dry
                .stdout
                .contains(&format!("2018-11-30-events.json (from byte {old_size})")),
        "{dry:#?}"
    );
    assert_eq!(project.count("SELECT COUNT(*) FROM staging_events"), events);

    let run = project.here("etl", &["--max-errors", "5"]).ok();
    assert!(
        run.load_line().starts_with("load: incremental") && run.load_line().contains("1 grown"),
        "{run:#?}"
    );
    assert_eq!(
        project.count("SELECT COUNT(*) FROM staging_events"),
        events + 2
    );
    // The bad line is named by its line in the whole file.
    assert_eq!(
        project.count("SELECT MAX(line) FROM load_errors"),
        lines_before as i64 + 3
    );
    // The summary shows the reject; check --rejects lists it with its file and line.
    assert!(run.stdout.contains("the first:\n"), "{run:#?}");
    let rejects = project.here("check", &["--rejects"]).ok();
    assert!(
        rejects.stdout.contains("1 rejected record in load_errors")
            && rejects.stdout.contains("2018-11-30-events.json")
            && rejects.stdout.contains(&(lines_before + 3).to_string())
            && rejects.stdout.contains("not json"),
        "{rejects:#?}"
    );
    let incremental = project.tables();
    let run = project
        .here("etl", &["--max-errors", "5", "--full-refresh"])
        .ok();
    assert!(run.load_line().contains("full refresh"), "{run:#?}");
    assert_eq!(
        project.tables(),
        incremental,
        "incremental and full loads differ"
    );
    // The ledger counts the file's records as a whole.
    let records = project
        .count("SELECT records FROM loaded_files WHERE file = '2018/11/2018-11-30-events.json'");
    assert_eq!(records, lines_before as i64 + 3);
}

#[test]
fn a_scheduled_load_waits_for_a_reader_and_says_who_it_waits_for() {
    let project = Project::new();
    project.here("etl", &[]).ok();
    // A reader holds the file: this test's own read-only connection, as a dashboard's would.
    let reader = duckdb::Connection::open_with_flags(
        project.duckdb(),
        duckdb::Config::default()
            .access_mode(duckdb::AccessMode::ReadOnly)
            .unwrap(),
    )
    .unwrap();
    let started = Instant::now();
    let run = project.here("etl", &["--lock-timeout", "2"]).failed();
    assert!(started.elapsed() >= Duration::from_secs(2), "{run:#?}");
    assert!(
        run.stderr.contains("waiting for"),
        "said nothing while it waited: {run:#?}"
    );
    assert!(
        run.stderr.contains(&format!("PID {}", std::process::id())),
        "{run:#?}"
    );
    // The reader goes away within the wait: the load goes through.
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        drop(reader);
    });
    project.here("etl", &["--lock-timeout", "30"]).ok();
    release.join().unwrap();
}

#[test]
fn a_reader_waits_for_a_load_and_gives_up_naming_it() {
    let project = Project::new();
    project.here("etl", &[]).ok();
    let writer = duckdb::Connection::open(project.duckdb()).unwrap();
    let run = project
        .here(
            "analysis",
            &["--query", "song_count", "--lock-timeout", "1"],
        )
        .failed();
    assert!(
        run.stderr.contains("in use by") && run.stderr.contains("--lock-timeout"),
        "{run:#?}"
    );
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        drop(writer);
    });
    let run = project.here("check", &["--lock-timeout", "30"]).ok();
    assert!(run.stderr.contains("waiting for a load"), "{run:#?}");
    release.join().unwrap();
}

#[test]
fn quiet_keeps_warnings_and_a_misspelt_local_section_is_an_error() {
    let project = Project::new();
    project.write_config("ENGIN = duckdb");
    let run = project.here("etl", &["-q"]).ok();
    assert!(run.stderr.contains("ENGIN"), "-q hid the warning: {run:#?}");
    assert!(
        !run.stderr.contains("etl: [LOCAL]"),
        "-q printed the start line: {run:#?}"
    );
    let run = project.here("etl", &["--strict"]).failed();
    assert!(
        run.stderr.contains("ENGIN") && !run.stderr.contains("ignored"),
        "{run:#?}"
    );

    // The start line names the source and the target before the work starts.
    project.write_config("");
    let run = project.here("etl", &[]).ok();
    let first = run.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("etl: [LOCAL] SONG_DATA = ") && first.contains(" into duckdb "),
        "{run:#?}"
    );

    // [LOCL] instead of [LOCAL] would switch the load to [S3]: an error, before any work.
    let text = fs::read_to_string(project.path().join("dwh.cfg")).unwrap();
    fs::write(
        project.path().join("dwh.cfg"),
        text.replace("[LOCAL]", "[LOCL]"),
    )
    .unwrap();
    fs::remove_file(project.duckdb()).unwrap();
    let run = project.here("etl", &["-q"]).failed();
    assert!(
        run.stderr.contains("[LOCL]") && run.stderr.contains("did you mean [LOCAL]"),
        "{run:#?}"
    );
    assert!(!project.duckdb().exists());
}

/// Runs `command` (a shell line) on a terminal of its own through util-linux's `script`,
/// typing `input`; `None` (with a notice) where `script` is absent, except under CI.
fn on_a_terminal(cwd: &Path, command: &str, input: &str) -> Option<Run> {
    use std::io::Write;
    let spawned = Command::new("script")
        .args(["-qec", command, "/dev/null"])
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("util-linux's script is needed for the terminal test under CI: {e}")
        }
        Err(e) => {
            eprintln!("NOTICE: skipping: no `script` to give the binary a terminal: {e}");
            return None;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Some(Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

#[test]
fn create_tables_asks_on_a_terminal_before_dropping_rows() {
    let project = Project::new();
    project.here("etl", &[]).ok();
    let plays = project.count("SELECT COUNT(*) FROM songplays");
    let binary = assert_cmd::cargo::cargo_bin("create_tables");
    let command = format!("{} --config dwh.cfg", binary.display());
    // `script` puts the terminal's output, the question included, on its standard output.
    let Some(no) = on_a_terminal(project.path(), &command, "n\n") else {
        return;
    };
    assert_eq!(no.code, Some(1), "{no:#?}");
    assert!(
        no.stdout.contains("Drop them and start over? [y/N]")
            && no
                .stdout
                .contains(&format!("songplays ({} rows)", thousands(plays)))
            && no.stdout.contains("nothing was dropped"),
        "{no:#?}"
    );
    assert_eq!(project.count("SELECT COUNT(*) FROM songplays"), plays);
    let yes = on_a_terminal(project.path(), &command, "y\n").unwrap();
    assert_eq!(yes.code, Some(0), "{yes:#?}");
    assert!(yes.stdout.contains("dropped "), "{yes:#?}");
    assert_eq!(project.count("SELECT COUNT(*) FROM songplays"), 0);
}

#[test]
fn the_readmes_everyday_commands_run_under_cron() {
    // As cron runs them: no terminal, another working directory, -q, the config by its
    // absolute path, twice (the second run finds nothing new).
    let project = Project::new();
    fs::copy(
        common::repo().join("dwh.cfg"),
        project.path().join("dwh.cfg"),
    )
    .unwrap();
    let config = project.path().join("dwh.cfg");
    let cron_dir = tempfile::tempdir().unwrap();
    for round in ["first", "second"] {
        let etl = project.run("etl", cron_dir.path(), &config, &["-q"]).ok();
        assert!(etl.stdout.is_empty(), "{round}: -q printed {etl:#?}");
        assert!(etl.stderr.is_empty(), "{round}: {etl:#?}");
        let analysis = project
            .run(
                "analysis",
                cron_dir.path(),
                &config,
                &["-q", "--query", "song_count", "--format", "csv"],
            )
            .ok();
        assert!(
            analysis.stdout.starts_with("songs\n"),
            "{round}: {analysis:#?}"
        );
        let check = project.run("check", cron_dir.path(), &config, &["-q"]).ok();
        assert!(
            check.stdout.is_empty() && check.stderr.is_empty(),
            "{round}: {check:#?}"
        );
    }
    let json = project
        .run("etl", cron_dir.path(), &config, &["-q", "--format", "json"])
        .ok();
    let document: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(document["load"]["mode"], "nothing_new");
    assert_eq!(document["committed"], true);
    assert_eq!(document["load"]["files"]["unchanged"], 180);
    assert!(document["tables"]["songplays"].as_i64().unwrap() > 0);
    // Nothing was written into the working directory cron ran in.
    assert_eq!(fs::read_dir(cron_dir.path()).unwrap().count(), 0);
    assert!(project.duckdb().exists());
}

#[test]
fn the_classic_mistakes_are_diagnosed() {
    let project = Project::new();
    // SONG_DATA and LOG_DATA swapped: every log record lacks its required fields.
    fs::write(
        project.path().join("dwh.cfg"),
        "[CLUSTER]\nHOST=\n[LOCAL]\nLOG_DATA = data/song_data\nSONG_DATA = data/log_data\n\
         LOG_JSONPATH = data/log_json_path.json\n",
    )
    .unwrap();
    let run = project.here("etl", &[]).failed();
    assert!(
        run.stderr
            .contains("Every record of song_data and log_data was rejected for a missing value")
            && run.stderr.contains("swapped"),
        "{run:#?}"
    );
    // PostgreSQL at Redshift's port (dwh.cfg's default): nothing listens there.
    fs::write(
        project.path().join("dwh.cfg"),
        "[CLUSTER]\nHOST=127.0.0.1\nDB_PORT=5439\nDB_NAME=dwh\nDB_USER=dwhuser\n\
         [WAREHOUSE]\nENGINE=postgres\n[LOCAL]\nLOG_DATA = data/log_data\n\
         SONG_DATA = data/song_data\nLOG_JSONPATH = data/log_json_path.json\n",
    )
    .unwrap();
    let run = project.here("etl", &["--lock-timeout", "0"]).failed();
    assert!(
        run.stderr.contains("DB_PORT is 5439, Redshift's port")
            && run.stderr.contains("DB_PORT = 5432"),
        "{run:#?}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn a_summary_that_cannot_be_written_says_the_load_was_committed() {
    let project = Project::new();
    let out = Command::new(assert_cmd::cargo::cargo_bin("etl"))
        .current_dir(project.path())
        .env_remove("RUST_LOG")
        .stdout(fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the load was committed, but its summary could not be written"),
        "{stderr}"
    );
    // It was: the next run finds nothing new.
    let run = project.here("etl", &[]).ok();
    assert!(run.load_line().starts_with("load: nothing new"), "{run:#?}");
}
