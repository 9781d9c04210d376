//! The pipeline end to end on the embedded DuckDB engine: the real binaries, the real sample,
//! and every kind of bad input.

mod common;

use std::fs;
use std::path::Path;

use common::{sources_with_log_lines, udacity_sample, Workspace, BAD_LINES, STAR_AND_STAGING};
use predicates::prelude::*;

#[test]
fn udacity_sample_gives_the_expected_warehouse() {
    let Some(sample) = udacity_sample() else {
        return;
    };
    let ws = Workspace::new(&sample, "");
    let summary = ws.create_and_load();
    let expected = [
        ("staging_events", 8056),
        ("staging_songs", 71),
        ("songplays", 6820),
        ("users", 97),
        ("songs", 71),
        ("artists", 69),
        ("time", 6813),
        ("load_errors", 0),
    ];
    for (table, rows) in expected {
        assert_eq!(
            ws.count(&format!("SELECT COUNT(*) FROM {table}")),
            rows,
            "rows of {table}"
        );
    }
    let matched = ws.dump("(SELECT song_id, artist_id FROM songplays WHERE song_id IS NOT NULL)");
    assert_eq!(
        matched,
        vec!["Text(\"SOZCTXZ12AB0182364\")|Text(\"AR5KOSW1187FB35FF4\")"]
    );
    // The summary reports what was read and loaded.
    assert!(
        summary
            .contains("read: 101 files, 3,774,888 bytes: 8,127 records, 8,127 staged, 0 rejected"),
        "{summary}"
    );
    assert!(summary.contains("| staging_events | 8,056 |"), "{summary}");
    // The match rate a newcomer needs to see (the sample's titles rarely meet its catalogue).
    assert!(
        summary.contains("songplays: 6,820 plays, 1 of them (0.0%) matched to a song"),
        "{summary}"
    );
    assert!(summary.contains("transform"), "{summary}");
}

#[test]
fn star_schema_semantics_hold_on_the_sample() {
    let Some(sample) = udacity_sample() else {
        return;
    };
    let ws = Workspace::new(&sample, "");
    ws.create_and_load();
    // Every play is a NextSong event with a user; none is lost or doubled.
    assert_eq!(
        ws.count(
            "SELECT COUNT(*) FROM (SELECT DISTINCT user_id, session_id, item_in_session \
             FROM staging_events WHERE page = 'NextSong' AND user_id IS NOT NULL)"
        ),
        6820
    );
    // songplay_id numbers plays 1..n in time order.
    assert_eq!(
        ws.count(
            "SELECT COUNT(*) FROM (SELECT songplay_id, ROW_NUMBER() OVER (ORDER BY start_time, \
             user_id, session_id, item_in_session) AS n FROM songplays) WHERE songplay_id <> n"
        ),
        0
    );
    // A user's level is the one of their latest event.
    assert_eq!(
        ws.count(
            "SELECT COUNT(*) FROM users u JOIN (SELECT user_id, arg_max(level, ts) AS level \
             FROM staging_events WHERE user_id IS NOT NULL GROUP BY user_id) l \
             USING (user_id) WHERE u.level <> l.level"
        ),
        0
    );
    // time: weekday 0 = Sunday; 2018-11-04 was a Sunday, in ISO week 44.
    assert_eq!(
        ws.count(
            "SELECT COUNT(*) FROM time WHERE CAST(start_time AS DATE) = DATE '2018-11-04' \
             AND (weekday <> 0 OR week <> 44 OR day <> 4 OR month <> 11 OR year <> 2018)"
        ),
        0
    );
    assert!(ws.count("SELECT COUNT(*) FROM time WHERE weekday = 0") > 0);
}

#[test]
fn running_etl_twice_leaves_identical_tables() {
    let Some(sample) = udacity_sample() else {
        return;
    };
    let ws = Workspace::new(&sample, "");
    ws.create_and_load();
    let first: Vec<_> = STAR_AND_STAGING.iter().map(|t| ws.dump(t)).collect();
    ws.cmd("etl").assert().success();
    let second: Vec<_> = STAR_AND_STAGING.iter().map(|t| ws.dump(t)).collect();
    assert_eq!(first, second);
}

/// Copies the sample with every file renamed so that sorted order is reversed, and the song
/// files merged into a few files holding several (some pretty-printed) objects.
fn shuffled_copy(sample: &Path, to: &Path) {
    let logs: Vec<_> = walkdir::WalkDir::new(sample.join("log_data"))
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .filter(|p| p.is_file())
        .collect();
    let mut logs = logs;
    logs.sort();
    let n = logs.len();
    for (i, log) in logs.iter().enumerate() {
        let dir = to.join("log_data").join(format!("part{:02}", n - i));
        fs::create_dir_all(&dir).unwrap();
        fs::copy(log, dir.join("events.json")).unwrap();
    }
    let mut songs: Vec<_> = walkdir::WalkDir::new(sample.join("song_data"))
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .filter(|p| p.is_file())
        .collect();
    songs.sort();
    songs.reverse();
    fs::create_dir_all(to.join("song_data")).unwrap();
    for (k, group) in songs.chunks(10).enumerate() {
        let mut text = String::new();
        for (j, song) in group.iter().enumerate() {
            let value: serde_json::Value =
                serde_json::from_slice(&fs::read(song).unwrap()).unwrap();
            if j % 2 == 0 {
                text.push_str(&serde_json::to_string_pretty(&value).unwrap());
            } else {
                text.push_str(&value.to_string());
            }
            text.push('\n');
        }
        fs::write(to.join(format!("song_data/{}.json", 99 - k)), text).unwrap();
    }
    fs::copy(
        sample.join("log_json_path.json"),
        to.join("log_json_path.json"),
    )
    .unwrap();
}

#[test]
fn file_order_and_file_layout_do_not_change_the_tables() {
    let Some(sample) = udacity_sample() else {
        return;
    };
    let original = Workspace::new(&sample, "");
    original.create_and_load();
    let shuffled_sources = tempfile::tempdir().unwrap();
    shuffled_copy(&sample, shuffled_sources.path());
    let shuffled = Workspace::new(shuffled_sources.path(), "");
    shuffled.create_and_load();
    for table in ["songplays", "users", "songs", "artists", "time"] {
        assert_eq!(original.dump(table), shuffled.dump(table), "table {table}");
    }
}

#[test]
fn bad_input_is_recorded_in_load_errors_and_counted() {
    let sources = tempfile::tempdir().unwrap();
    sources_with_log_lines(sources.path(), BAD_LINES);
    #[cfg(unix)]
    std::os::unix::fs::symlink(
        sources.path().join("nowhere"),
        sources.path().join("log_data/2018/11/broken.json"),
    )
    .unwrap();
    let ws = Workspace::new(sources.path(), "MAX_ERRORS=10");
    ws.cmd("create_tables").assert().success();
    let summary = if cfg!(unix) {
        // A file that cannot be read is not a record: the run fails, naming it...
        ws.cmd("etl")
            .assert()
            .code(1)
            .stderr(predicate::str::contains("cannot read "))
            .stderr(predicate::str::contains("broken.json"))
            .stderr(predicate::str::contains("--skip-unreadable-files"));
        assert_eq!(ws.count("SELECT COUNT(*) FROM staging_events"), 0);
        // ...unless the user says to go on; then it is listed apart from the rejects.
        let out = ws
            .cmd("etl")
            .arg("--skip-unreadable-files")
            .assert()
            .success();
        let summary = String::from_utf8(out.get_output().stdout.clone()).unwrap();
        assert!(
            summary.contains("1 file could not be read and was skipped"),
            "{summary}"
        );
        assert!(summary.contains("broken.json"), "{summary}");
        assert!(summary.contains("3 rejected records"), "{summary}");
        summary
    } else {
        String::from_utf8(ws.cmd("etl").assert().success().get_output().stdout.clone()).unwrap()
    };
    assert!(
        summary.contains("rejected records are in load_errors"),
        "{summary}"
    );
    let errors = ws.dump("(SELECT file, line, reason, raw_text FROM load_errors)");
    let expected_count = if cfg!(unix) { 4 } else { 3 };
    assert_eq!(errors.len(), expected_count, "{errors:#?}");
    let all = errors.join("\n");
    assert!(
        all.contains("2018-11-01-events.json\")|BigInt(2)|Text(\"not valid JSON"),
        "{all}"
    );
    assert!(
        all.contains("BigInt(3)|Text(\"a JSON array, not an object\")|Text(\"[1, 2, 3]\")"),
        "{all}"
    );
    assert!(
        all.contains("BigInt(4)|Text(\"ts ($['ts']): \\\"abc\\\" is not a whole number\")"),
        "{all}"
    );
    if cfg!(unix) {
        assert!(
            all.contains("broken.json\")|Null|Text(\"unreadable file: "),
            "{all}"
        );
    }
    // The good records are in, and the play matched its song within 0.01 s.
    assert_eq!(ws.count("SELECT COUNT(*) FROM staging_events"), 1);
    assert_eq!(
        ws.count("SELECT COUNT(*) FROM songplays WHERE song_id = 'SO1'"),
        1
    );
}

#[test]
fn too_many_rejects_fail_the_run_and_keep_the_previous_warehouse() {
    let sources = tempfile::tempdir().unwrap();
    sources_with_log_lines(sources.path(), "");
    let ws = Workspace::new(sources.path(), "MAX_ERRORS=2");
    ws.create_and_load();
    let before: Vec<_> = STAR_AND_STAGING.iter().map(|t| ws.dump(t)).collect();

    // Same sources plus three bad lines and a second good event: over MAX_ERRORS = 2.
    let second = r#"{"ts": 1543537400000, "sessionId": 830, "itemInSession": 0, "page": "NextSong", "userId": "92"}"#;
    sources_with_log_lines(sources.path(), &format!("{second}\n{BAD_LINES}"));
    ws.cmd("etl")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "3 records rejected, more than [WAREHOUSE] MAX_ERRORS = 2",
        ))
        .stderr(predicate::str::contains(
            "2018-11-01-events.json:3: not valid JSON",
        ))
        .stderr(predicate::str::contains("nothing was committed"));
    let after: Vec<_> = STAR_AND_STAGING.iter().map(|t| ws.dump(t)).collect();
    assert_eq!(before, after, "a failed load changed the warehouse");

    // --max-errors overrides the file.
    ws.cmd("etl").arg("--max-errors=3").assert().success();
    assert_eq!(ws.count("SELECT COUNT(*) FROM songplays"), 2);
}

#[test]
fn configuration_mistakes_are_one_line_errors_that_say_what_to_change() {
    let sources = tempfile::tempdir().unwrap();
    sources_with_log_lines(sources.path(), "");
    let ws = Workspace::new(sources.path(), "");

    // A reader before any load: no warehouse is made at the path.
    ws.cmd("analysis")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "no warehouse at {}: check [WAREHOUSE] DUCKDB_PATH, or run etl",
            ws.duckdb().display()
        )));
    assert!(!ws.duckdb().exists());
    ws.cmd("create_tables").assert().success();

    let one_line_error = |expected: &str| {
        let out = ws.cmd("etl").assert().code(1);
        let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
        assert!(stderr.contains(expected), "{stderr}");
        // The line that says which sources go where, then one line of error.
        let error: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.starts_with("etl: ["))
            .collect();
        assert_eq!(error.len(), 1, "{stderr}");
    };

    // A missing source directory.
    fs::rename(
        sources.path().join("song_data"),
        sources.path().join("songs_moved"),
    )
    .unwrap();
    one_line_error("[LOCAL] SONG_DATA = ");
    // A source with no .json file.
    fs::create_dir_all(sources.path().join("song_data/A")).unwrap();
    fs::write(sources.path().join("song_data/A/readme.txt"), "x").unwrap();
    one_line_error("holds no .json file");
    fs::rename(
        sources.path().join("songs_moved/A/B"),
        sources.path().join("song_data/A/B"),
    )
    .unwrap();
    // A JSONPaths file without a jsonpaths array.
    fs::write(
        sources.path().join("log_json_path.json"),
        r#"{"paths": []}"#,
    )
    .unwrap();
    one_line_error("has no \"jsonpaths\" array");
    // A malformed key.
    ws.write_config(sources.path(), "MAX_ERRORS=lots");
    one_line_error("[WAREHOUSE] MAX_ERRORS = \"lots\" is not valid");
    // A missing config file.
    assert_cmd::Command::cargo_bin("etl")
        .unwrap()
        .args(["--config", "/nonexistent/dwh.cfg"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "there is no config file /nonexistent/dwh.cfg",
        ));
}

#[test]
fn analysis_answers_in_every_format() {
    let Some(sample) = udacity_sample() else {
        return;
    };
    let ws = Workspace::new(&sample, "");
    ws.create_and_load();

    let out = ws
        .cmd("analysis")
        .args(["--format", "json"])
        .assert()
        .success();
    let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let answers = doc["answers"].as_array().unwrap();
    assert_eq!(answers.len(), 13);
    let answer = |name: &str| {
        answers
            .iter()
            .find(|a| a["name"] == name)
            .unwrap_or_else(|| panic!("no answer {name}"))
            .clone()
    };
    assert_eq!(answer("song_count")["rows"][0]["songs"], 71);
    assert_eq!(answer("artist_count")["rows"][0]["artists"], 69);
    // Every distribution adds up to the number of plays: no join double-counts.
    for name in [
        "plays_by_year",
        "plays_by_day",
        "plays_by_week",
        "plays_by_month",
        "plays_by_hour",
        "plays_by_weekday",
    ] {
        let total: i64 = answer(name)["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["plays"].as_i64().unwrap())
            .sum();
        assert_eq!(total, 6820, "{name}");
    }
    let users_by_level: i64 = answer("users_by_level")["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["users"].as_i64().unwrap())
        .sum();
    assert_eq!(users_by_level, 97);
    let top_songs = answer("top_songs");
    assert_eq!(top_songs["rows"].as_array().unwrap().len(), 1);
    assert_eq!(top_songs["rows"][0]["song_id"], "SOZCTXZ12AB0182364");
    assert_eq!(answer("top_users")["rows"].as_array().unwrap().len(), 10);
    let both = answer("both_levels");
    assert!(!both["rows"].as_array().unwrap().is_empty());

    ws.cmd("analysis")
        .args(["--query", "top_users", "--limit", "3", "--format", "csv"])
        .assert()
        .success()
        .stdout(predicate::function(|out: &str| {
            out.starts_with("user_id,first_name,last_name,level,plays\n")
                && out.lines().count() == 4
        }));
    ws.cmd("analysis")
        .assert()
        .success()
        .stdout(predicate::str::contains("Most played songs"))
        .stdout(predicate::str::contains("Plays by weekday"));
    ws.cmd("analysis")
        .args(["--query", "nonsense"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("top_songs"));
}

#[test]
fn bundled_data_is_the_generators_output_and_loads_cleanly() {
    let out = tempfile::tempdir().unwrap();
    let generated = out.path().join("data");
    assert_cmd::Command::cargo_bin("gen_data")
        .unwrap()
        .arg("--out")
        .arg(&generated)
        .assert()
        .success();
    let bundled = common::repo().join("data");
    let list = |root: &Path| {
        let mut files: Vec<_> = walkdir::WalkDir::new(root)
            .into_iter()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().is_file())
            .map(|e| e.path().strip_prefix(root).unwrap().to_path_buf())
            .collect();
        files.sort();
        files
    };
    let files = list(&bundled);
    assert_eq!(
        files,
        list(&generated),
        "data/ differs from gen_data's output"
    );
    for file in &files {
        assert!(
            fs::read(bundled.join(file)).unwrap() == fs::read(generated.join(file)).unwrap(),
            "{} differs from gen_data's output",
            file.display()
        );
    }

    let ws = Workspace::new(&bundled, "");
    ws.create_and_load();
    assert_eq!(ws.count("SELECT COUNT(*) FROM load_errors"), 0);
    let plays = ws.count("SELECT COUNT(*) FROM songplays");
    let matched = ws.count("SELECT COUNT(*) FROM songplays WHERE song_id IS NOT NULL");
    assert!(plays > 1000, "{plays}");
    assert!(
        matched > plays / 2 && matched < plays,
        "{matched} of {plays}"
    );
    assert!(ws.count("SELECT COUNT(*) FROM staging_events WHERE user_id IS NULL") > 0);
    assert!(
        ws.count(
            "SELECT COUNT(*) FROM (SELECT user_id FROM songplays GROUP BY user_id \
             HAVING COUNT(DISTINCT level) = 2)"
        ) > 0
    );
    assert!(ws.count("SELECT COUNT(*) FROM artists WHERE name LIKE '%''%' OR name LIKE '%ö%'") > 0);
}

#[test]
fn dry_run_lists_the_sources_and_touches_no_warehouse() {
    let sources = tempfile::tempdir().unwrap();
    sources_with_log_lines(sources.path(), BAD_LINES);
    let ws = Workspace::new(sources.path(), "");
    let size = |file: &str| fs::metadata(sources.path().join(file)).unwrap().len();
    let songs = size("song_data/A/B/C/TRABC.json");
    let logs = size("log_data/2018/11/2018-11-01-events.json");
    ws.cmd("etl")
        .arg("--dry-run")
        .assert()
        .success()
        .stdout(predicate::str::contains("dry run: nothing loaded"))
        .stdout(
            predicate::str::is_match(format!(r"\| song_data \| .*song_data +\| 1 +\| {songs} "))
                .unwrap(),
        )
        .stdout(
            predicate::str::is_match(format!(r"\| log_data +\| .*log_data +\| 1 +\| {logs} "))
                .unwrap(),
        );
    assert!(!ws.duckdb().exists(), "a dry run created the warehouse");
}

#[test]
fn gen_data_refuses_to_overwrite_without_force() {
    let out = tempfile::tempdir().unwrap();
    let gen_data = || assert_cmd::Command::cargo_bin("gen_data").unwrap();
    let args = ["--songs", "5", "--events", "50", "--days", "2", "--out"];
    gen_data().args(args).arg(out.path()).assert().success();
    gen_data()
        .args(args)
        .arg(out.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--force"));
    gen_data()
        .args(args)
        .arg(out.path())
        .arg("--force")
        .assert()
        .success();
}

#[test]
fn every_binary_explains_itself_and_keeps_secrets() {
    let sources = tempfile::tempdir().unwrap();
    sources_with_log_lines(sources.path(), "");
    let ws = Workspace::new(sources.path(), "");
    for (bin, mentions) in [
        ("create_tables", "DUCKDB_PATH"),
        ("etl", "MAX_ERRORS"),
        ("analysis", "top_songs"),
        ("iac_create", "[DWH]"),
        ("iac_delete", "[DWH]"),
    ] {
        ws.cmd(bin)
            .arg("--help")
            .assert()
            .success()
            .stdout(predicate::str::contains("--config"))
            .stdout(predicate::str::contains(mentions));
    }
    // gen_data reads no config and opens no warehouse: it offers neither flag.
    assert_cmd::Command::cargo_bin("gen_data")
        .unwrap()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("--seed"))
        .stdout(predicate::str::contains("--config").not())
        .stdout(predicate::str::contains("--engine").not());
    for bin in ["iac_create", "iac_delete"] {
        ws.cmd(bin)
            .arg("--help")
            .assert()
            .stdout(predicate::str::contains("--engine").not());
    }
    ws.cmd("analysis").args(["-q", "-v"]).assert().code(2);
    // The workspace's [CLUSTER] names no database: iac_create says what to set.
    ws.cmd("iac_create")
        .args(["--dry-run", "--cidr", "203.0.113.7/32"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("[CLUSTER] DB_NAME is empty"))
        .stdout(predicate::str::contains(
            "[S3] LOG_DATA = \"\" is not an s3:// URI",
        ))
        .stderr(predicate::str::contains(
            "problems to fix before a real run",
        ));
    for args in [
        &["create_tables", "-vv"][..],
        &["etl", "-vv"],
        &["analysis", "-vv"],
    ] {
        let out = ws.cmd(args[0]).args(&args[1..]).assert().success();
        let output = out.get_output();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!all.contains("sentinel-password-123"), "{all}");
    }
    ws.cmd("etl").arg("--no-such-flag").assert().code(2);
}

#[test]
fn comparisons_follow_the_contract_on_duckdb() {
    let sources = tempfile::tempdir().unwrap();
    common::semantics_sources(sources.path());
    let ws = Workspace::new(sources.path(), "MAX_ERRORS=1");
    common::load_semantics(&ws);
    common::assert_semantics(&ws, "duckdb");
}

#[test]
fn print_sql_shows_every_statement_and_sends_none() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("dwh.cfg");
    // Every peer is a closed port on loopback: any attempt to reach one would fail the run.
    fs::write(
        &config,
        "[CLUSTER]\nHOST=127.0.0.1\nDB_PORT=9\nDB_NAME=dwh\nDB_USER=dwhuser\n\
         DB_PASSWORD=sentinel-password-123\n\
         [IAM_ROLE]\nARN=arn:aws:iam::123456789012:role/sparkify-redshift-s3-read\n\
         [S3]\nLOG_DATA=s3://udacity-dend/log_data\nSONG_DATA=s3://udacity-dend/song_data\n\
         LOG_JSONPATH=s3://udacity-dend/log_json_path.json\nREGION=us-west-2\n\
         ENDPOINT=http://127.0.0.1:9\n\
         [WAREHOUSE]\nMAX_ERRORS=5\n[DWH]\nDWH_REGION=us-west-2\n",
    )
    .unwrap();
    let run = |binary: &str, engine: &str| {
        let out = assert_cmd::Command::cargo_bin(binary)
            .unwrap()
            .arg("--config")
            .arg(&config)
            .args(["--print-sql", "--engine", engine])
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .timeout(std::time::Duration::from_secs(60))
            .assert()
            .success();
        let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
        assert!(!stdout.contains("sentinel-password-123"), "{stdout}");
        stdout
    };
    let ddl = run("create_tables", "redshift");
    assert!(ddl.contains("DROP TABLE IF EXISTS songplays;"), "{ddl}");
    assert!(
        ddl.contains("title VARCHAR(512) COLLATE CASE_SENSITIVE"),
        "{ddl}"
    );

    let etl = run("etl", "redshift-data");
    let order = [
        "BEGIN;",
        "COPY staging_songs",
        "FROM 's3://udacity-dend/song_data/'",
        "MAXERROR 6;",
        "FROM sys_load_history",
        "FROM sys_load_error_detail",
        "COPY staging_events",
        "INSERT INTO songs",
        "INSERT INTO songplays",
        "SELECT COUNT(*) FROM load_errors;",
        "ROW_NUMBER() OVER (PARTITION BY user_id, session_id, item_in_session",
        "COMMIT;",
    ];
    let mut from = 0;
    for part in order {
        let at = etl[from..]
            .find(part)
            .unwrap_or_else(|| panic!("{part:?} missing or out of order in:\n{etl}"));
        from += at + part.len();
    }
    assert!(
        etl.contains("-- etl lists s3://udacity-dend/song_data/ first"),
        "{etl}"
    );
    // A Data API workgroup is Serverless: no STL table.
    assert!(!etl.contains("stl_load_errors"), "{etl}");
    // What only a real run knows reads as a placeholder, not as SQL that would run.
    assert!(
        etl.contains("WHERE query_id = <query_id of the row above>"),
        "{etl}"
    );
    assert!(!etl.contains("query_id = query_id"), "{etl}");

    // Before iac_create wrote the role, the COPY shows where it goes.
    let with_role = fs::read_to_string(&config).unwrap();
    fs::write(
        &config,
        with_role.replace(
            "ARN=arn:aws:iam::123456789012:role/sparkify-redshift-s3-read",
            "ARN=",
        ),
    )
    .unwrap();
    let before_iac = run("etl", "redshift");
    assert!(
        before_iac.contains("IAM_ROLE '<[IAM_ROLE] ARN, written by iac_create>'"),
        "{before_iac}"
    );
    fs::write(&config, &with_role).unwrap();

    // --coalesce: each COPY reads a manifest of the parts under MANIFEST_PREFIX.
    fs::write(
        &config,
        with_role.replace(
            "REGION=us-west-2\n",
            "REGION=us-west-2\nMANIFEST_PREFIX=s3://my-bucket/sparkify/\n",
        ),
    )
    .unwrap();
    let coalesced = assert_cmd::Command::cargo_bin("etl")
        .unwrap()
        .arg("--config")
        .arg(&config)
        .args(["--print-sql", "--engine", "redshift", "--coalesce"])
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .success();
    let coalesced = String::from_utf8_lossy(&coalesced.get_output().stdout).to_string();
    assert!(
        coalesced.contains("FROM 's3://my-bucket/sparkify/sparkify-staging_songs.manifest'")
            && coalesced.contains("s3://my-bucket/sparkify/sparkify-staging_songs-part-NNNNN.json")
            && coalesced.contains("\nMANIFEST\n"),
        "{coalesced}"
    );
    fs::write(&config, with_role).unwrap();

    let postgres = run("etl", "postgres");
    assert!(
        postgres.contains("COPY staging_events (artist, auth,") && postgres.contains("FROM STDIN;"),
        "{postgres}"
    );
    // The local engines read the files themselves: --coalesce is a usage error there.
    assert_cmd::Command::cargo_bin("etl")
        .unwrap()
        .arg("--config")
        .arg(&config)
        .args(["--print-sql", "--engine", "postgres", "--coalesce"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--coalesce is for Redshift"));
}

#[test]
fn every_quality_check_fails_on_its_seeded_failure_on_duckdb() {
    let Some(sample) = udacity_sample() else {
        return;
    };
    let loaded = Workspace::new(&sample, "");
    let summary = loaded.create_and_load();
    let checks = sparkify::checks::all();
    // The sound warehouse passes every check, and the summary lists each.
    for check in &checks {
        assert!(
            summary.contains(&check.name()),
            "{} missing:\n{summary}",
            check.name()
        );
    }
    loaded
        .cmd("check")
        .assert()
        .success()
        .stdout(predicate::str::contains("reconciliation"));
    for check in &checks {
        let ws = Workspace::new(&sample, "");
        fs::copy(loaded.duckdb(), ws.duckdb()).unwrap();
        let conn = duckdb::Connection::open(ws.duckdb()).unwrap();
        for statement in common::seed_failure(check, sparkify::sql::Dialect::DuckDb) {
            conn.execute_batch(&statement)
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
        drop(conn);
        common::assert_check_fails(&ws, check);
    }
}

#[test]
fn check_reports_as_json_for_schedulers() {
    let sources = tempfile::tempdir().unwrap();
    sources_with_log_lines(sources.path(), "");
    let ws = Workspace::new(sources.path(), "");
    ws.create_and_load();
    let document = |code: i32| -> serde_json::Value {
        let out = ws
            .cmd("check")
            .args(["--format", "json"])
            .assert()
            .code(code);
        serde_json::from_slice(&out.get_output().stdout).unwrap()
    };
    let sound = document(0);
    assert_eq!(sound["passed"], true);
    let checks = sound["checks"].as_array().unwrap();
    assert_eq!(checks.len(), sparkify::checks::all().len());
    assert!(checks
        .iter()
        .all(|c| c["failures"] == 0 && c["passed"] == true));
    let conn = duckdb::Connection::open(ws.duckdb()).unwrap();
    conn.execute_batch("UPDATE users SET level = 'premium'")
        .unwrap();
    drop(conn);
    let broken = document(1);
    assert_eq!(broken["passed"], false);
    let failed: Vec<&serde_json::Value> = broken["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "{broken:#}");
    assert_eq!(
        failed[0]["name"],
        "accepted_values(users.level: free, paid)"
    );
    assert_eq!(failed[0]["failures"], 1);
    assert_eq!(failed[0]["offending_rows"][0]["user_id"], 91);
    assert_eq!(failed[0]["offending_rows"][0]["level"], "premium");
}

#[test]
fn a_load_that_fails_a_check_commits_nothing() {
    let sources = tempfile::tempdir().unwrap();
    // A level the checks do not accept: a new tier, or a typo upstream.
    sources_with_log_lines(
        sources.path(),
        r#"{"artist":"A","auth":"Logged In","firstName":"K","gender":"F","itemInSession":1,"lastName":"B","length":100.0,"level":"premium","location":"X","method":"PUT","page":"NextSong","registration":1540991795796.0,"sessionId":830,"song":"S","status":200,"ts":1543537328796,"userAgent":"UA","userId":"92"}"#,
    );
    let ws = Workspace::new(sources.path(), "");
    ws.cmd("create_tables").assert().success();
    let out = ws.cmd("etl").assert().code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("accepted_values(songplays.level: free, paid): 1 of 2 rows fail"),
        "{stderr}"
    );
    assert!(
        stderr.contains("accepted_values(users.level: free, paid): 1 of 2 rows fail"),
        "{stderr}"
    );
    assert!(stderr.contains("user_id=92, level=premium"), "{stderr}");
    assert_eq!(ws.count("SELECT COUNT(*) FROM songplays"), 0);
    // Skipped on request: loaded, and the summary says the checks did not run.
    ws.cmd("etl")
        .arg("--no-checks")
        .assert()
        .success()
        .stdout(predicate::str::contains("quality checks skipped"));
    assert_eq!(ws.count("SELECT COUNT(*) FROM songplays"), 2);
    ws.cmd("check").assert().code(1);
}

#[test]
fn an_incremental_load_checks_the_rows_it_changed_and_fails_on_them() {
    let sources = tempfile::tempdir().unwrap();
    let older = common::event(92, 830, 1, "paid", "S", "A", 100.0, 1_543_537_328_796);
    sources_with_log_lines(sources.path(), &format!("{older}\n"));
    let ws = Workspace::new(sources.path(), "");
    ws.create_and_load();
    let new_day = |level: &str| {
        let play = common::event(93, 900, 0, level, "S", "A", 100.0, 1_543_623_727_796);
        fs::write(
            sources
                .path()
                .join("log_data/2018/11/2018-11-02-events.json"),
            format!("{play}\n"),
        )
        .unwrap();
    };
    // A new tier upstream: the merge's one new play and user fail, counted among the rows it
    // changed, and nothing is committed.
    new_day("premium");
    let out = ws.cmd("etl").assert().code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    for failed in [
        "accepted_values(songplays.level: free, paid): 1 of 1 row fail",
        "accepted_values(users.level: free, paid): 1 of 1 row fail",
        "user_id=93, level=premium",
    ] {
        assert!(stderr.contains(failed), "{failed}: {stderr}");
    }
    assert_eq!(ws.count("SELECT COUNT(*) FROM songplays"), 2);

    // Fixed upstream: it loads, and the checks say which rows they read.
    new_day("paid");
    let out = ws.cmd("etl").args(["--format", "json"]).assert().success();
    let summary: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(summary["load"]["mode"], "incremental", "{summary:#}");
    let checks = summary["checks"].as_array().unwrap();
    assert_eq!(checks.len(), sparkify::checks::all().len());
    let read = |name: &str| {
        let check = checks.iter().find(|c| c["name"] == name).unwrap();
        (
            check["rows"].as_str().unwrap(),
            check["rows_examined"].as_i64().unwrap(),
        )
    };
    assert_eq!(
        read("accepted_values(songplays.level: free, paid)"),
        ("changed", 1)
    );
    assert_eq!(read("not_null(users.user_id)"), ("changed", 1));
    // A play's user may have changed too: the plays of the users this load changed.
    assert_eq!(
        read("relationship(songplays(user_id) in users(user_id))"),
        ("changed", 1)
    );
    assert_eq!(read("unique(songplays: songplay_id)"), ("all", 3));
    assert_eq!(
        read("reconciliation(songplays = distinct NextSong plays in staging_events)"),
        ("changed", 3)
    );
    assert_eq!(read("unique(songs: song_id)"), ("unchanged", 0));
    assert_eq!(ws.count("SELECT COUNT(*) FROM songplays"), 3);

    // What the load did not change is not read again: a row broken since is found by the
    // `check` binary, which reads everything, and not by a load of another user's day.
    let conn = duckdb::Connection::open(ws.duckdb()).unwrap();
    conn.execute_batch("UPDATE users SET level = 'gold' WHERE user_id = 91")
        .unwrap();
    drop(conn);
    let day3 = common::event(94, 901, 0, "free", "S", "A", 100.0, 1_543_710_127_796);
    fs::write(
        sources
            .path()
            .join("log_data/2018/11/2018-11-03-events.json"),
        format!("{day3}\n"),
    )
    .unwrap();
    ws.cmd("etl")
        .assert()
        .success()
        .stdout(predicate::str::contains("on the rows this load changed"));
    ws.cmd("check").assert().code(1).stderr(
        predicate::str::contains("accepted_values(users.level: free, paid): 1 of 4 rows fail")
            .and(predicate::str::contains("user_id=91, level=gold")),
    );
}

#[test]
fn after_a_merge_the_reconciliation_fails_when_songplays_did_not_grow_by_the_new_plays() {
    let sources = tempfile::tempdir().unwrap();
    sources_with_log_lines(sources.path(), "");
    let ws = Workspace::new(sources.path(), "");
    ws.create_and_load();
    let reconciliation = sparkify::checks::all().pop().unwrap();
    let query = sparkify::sql::check_counts(
        &reconciliation,
        sparkify::sql::Dialect::DuckDb,
        sparkify::sql::CheckScope::MergedRows,
    );
    let conn = duckdb::Connection::open(ws.duckdb()).unwrap();
    // One play in songplays; what a merge would have counted before it and brought.
    let counts = |before: i64, replaced: i64, incoming: i64| -> (i64, i64) {
        conn.execute_batch(&format!(
            "CREATE OR REPLACE TEMP TABLE merge_from AS SELECT TIMESTAMP '2018-11-30 00:00:00' \
             AS start_time, {before} AS plays_before, {replaced} AS plays_replaced, {incoming} \
             AS incoming_plays, 0 AS user_events_from"
        ))
        .unwrap();
        conn.query_row(&query, [], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
    };
    assert_eq!(counts(0, 0, 1), (1, 0), "a first play added");
    assert_eq!(
        counts(1, 1, 1),
        (1, 0),
        "a play replaced by its new version"
    );
    assert_eq!(counts(1, 0, 1), (2, 1), "a new play lost");
    assert_eq!(counts(1, 0, 0), (1, 0), "nothing new");
    assert_eq!(counts(2, 0, 0), (2, 1), "a play lost that was not replaced");
}

#[test]
fn incremental_loads_give_the_tables_of_a_full_load_on_duckdb() {
    common::assert_incremental_invariants(&|sources: &Path| {
        let ws = Workspace::new(sources, "");
        (ws, Box::new(()) as Box<dyn std::any::Any>)
    });
}

#[test]
fn incremental_loads_retry_unreadable_files_keep_vanished_ones_and_follow_the_mapping() {
    let sources = tempfile::tempdir().unwrap();
    sources_with_log_lines(sources.path(), "");
    let logs = sources.path().join("log_data/2018/11");
    // A file that cannot be read yet: a link to nothing.
    let late = logs.join("late.json");
    let target = sources.path().join("arrives-later.json");
    #[cfg(unix)]
    std::os::unix::fs::symlink(&target, &late).unwrap();
    let ws = Workspace::new(sources.path(), "");
    ws.cmd("create_tables").assert().success();
    ws.cmd("etl")
        .arg("--skip-unreadable-files")
        .assert()
        .success();
    let unreadable = "SELECT COUNT(*) FROM load_errors WHERE reason LIKE 'unreadable file%'";
    assert_eq!(ws.count(unreadable), 1);

    // It can be read now: it is new, and its old entry in load_errors goes.
    let event = r#"{"artist":"A","auth":"Logged In","firstName":"K","gender":"F","itemInSession":1,"lastName":"B","length":100.0,"level":"paid","location":"X","method":"PUT","page":"NextSong","registration":1540991795796.0,"sessionId":830,"song":"S","status":200,"ts":1543537328796,"userAgent":"UA","userId":"92"}"#;
    fs::write(&target, format!("{event}\n")).unwrap();
    ws.cmd("etl")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "load: incremental, only the new files read; files: 1 new, 0 changed, 2 unchanged",
        ));
    assert_eq!(ws.count(unreadable), 0);
    assert_eq!(ws.count("SELECT COUNT(*) FROM songplays"), 2);

    // A file that vanished keeps its records until a full refresh.
    fs::remove_file(logs.join("2018-11-01-events.json")).unwrap();
    ws.cmd("etl")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "load: nothing new, nothing read or changed",
        ))
        .stdout(predicate::str::contains(
            "1 no longer found (their records stay until --full-refresh)",
        ));
    assert_eq!(ws.count("SELECT COUNT(*) FROM songplays"), 2);
    ws.cmd("etl")
        .arg("--full-refresh")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "load: full refresh (--full-refresh)",
        ));
    assert_eq!(ws.count("SELECT COUNT(*) FROM songplays"), 1);

    // The JSONPaths file written another way is the same mapping: nothing new.
    let mapping = sources.path().join("log_json_path.json");
    let text = fs::read_to_string(&mapping).unwrap();
    fs::write(&mapping, text.replace("$['firstName']", "$.firstName")).unwrap();
    ws.cmd("etl")
        .assert()
        .success()
        .stdout(predicate::str::contains("load: nothing new"));
    // Another mapping (first and last names swapped) types every record anew.
    let swapped = text
        .replace("$['firstName']", "$['SWAP']")
        .replace("$['lastName']", "$['firstName']")
        .replace("$['SWAP']", "$['lastName']");
    fs::write(&mapping, swapped).unwrap();
    ws.cmd("etl")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "differs from the one of the last load",
        ));
    assert_eq!(
        ws.dump("(SELECT first_name, last_name FROM users)"),
        ["Text(\"B\")|Text(\"K\")"]
    );
}

/// The transform's and the merge's plans on DuckDB: every join a hash join (or, for the
/// merge's one-row bookkeeping, a cross product of single rows), never a nested-loop join whose
/// cost grows with plays times songs; the songplays statement joins plays and the catalogue by
/// hashing on title and artist. As the PostgreSQL test pins its plans.
#[test]
fn the_transform_and_merge_plan_no_nested_loop_join_on_duckdb() {
    use sparkify::sql::{self, Dialect};
    let sources = common::generated(3000, 20_000, 11);
    let ws = Workspace::new(sources.path(), "");
    ws.create_and_load();
    let conn = duckdb::Connection::open(ws.duckdb()).unwrap();
    let plan = |statement: &str| -> String {
        let mut explained = conn.prepare(&format!("EXPLAIN {statement}")).unwrap();
        let rows = explained
            .query_map([], |row| row.get::<_, String>(1))
            .unwrap()
            .map(Result::unwrap)
            .collect::<Vec<_>>();
        // Operators as DuckDB names them in code: "Hash Join" is HASH_JOIN.
        rows.join("\n").to_uppercase().replace(' ', "_")
    };
    let nested = [
        "NESTED_LOOP_JOIN",
        "BLOCKWISE_NL_JOIN",
        "PIECEWISE_MERGE_JOIN",
    ];
    // The names are DuckDB's: joins on other than equal keys are planned so.
    let unequal = plan(
        "SELECT COUNT(*) FROM songs a JOIN songs b ON a.duration < b.duration OR a.year <> b.year",
    );
    assert!(nested.iter().any(|n| unequal.contains(n)), "{unequal}");
    assert!(plan("SELECT COUNT(*) FROM songs a, artists b").contains("CROSS_PRODUCT"));
    for (table, statement) in sql::transform(Dialect::DuckDb) {
        let shown = plan(&statement);
        for operator in nested.iter().chain(&["CROSS_PRODUCT"]) {
            assert!(
                !shown.contains(operator),
                "{}: {operator}\n{shown}",
                table.name
            );
        }
        if table.name == "songplays" {
            assert!(shown.contains("HASH_JOIN"), "{shown}");
        }
    }
    // The merge reads merge_from, which its first step creates. DuckDB joins a comparison with
    // merge_from's one row as a NESTED_LOOP_JOIN against that row (linear in the rows
    // compared); what must not appear is a join on other than equal keys between two tables
    // (blockwise or piecewise), and the plays meet the catalogue by hashing.
    conn.execute_batch("BEGIN").unwrap();
    for step in sql::merge_incoming_events(Dialect::DuckDb) {
        if !step.sql.starts_with("CREATE TEMP TABLE") {
            let shown = plan(&step.sql);
            for operator in &nested[1..] {
                assert!(
                    !shown.contains(operator),
                    "{}: {operator}\n{shown}",
                    step.sql
                );
            }
            if step.sql.starts_with("INSERT INTO songplays") {
                assert!(shown.contains("HASH_JOIN"), "{shown}");
                assert!(!shown.contains("CROSS_PRODUCT"), "{shown}");
            }
        }
        conn.execute_batch(&step.sql)
            .unwrap_or_else(|e| panic!("{}: {e}", step.sql));
    }
    conn.execute_batch("ROLLBACK").unwrap();
}
