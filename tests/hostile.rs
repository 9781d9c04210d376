//! Input real pipelines meet, through the real binaries on DuckDB: a mistyped `dwh.cfg`, files
//! that cannot be read, NULs and impossible times in a log, a log larger than a chunk, a
//! second writer, a killed run, and data that would drive a terminal or a spreadsheet. The
//! PostgreSQL side of the same cases is in `tests/postgres.rs`.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::{
    hostile_sources, kill_etl_at, sources_with_log_lines, Workspace, HOSTILE_REJECTS,
    STAR_AND_STAGING,
};
use predicates::prelude::*;

const PASSWORD: &str = "sentinel-password-123";

#[test]
fn a_mistyped_config_names_the_key_and_never_shows_the_password() {
    let sources = tempfile::tempdir().unwrap();
    sources_with_log_lines(sources.path(), "");
    for cluster in [
        // The closing quote forgotten: the old reader swallowed the lines after it.
        format!("HOST = 'db.example.com\nDB_NAME = dwh\nDB_PASSWORD = {PASSWORD}\nDB_PORT = 5432"),
        // A value continued onto an indented line.
        format!("HOST = db.example.com\n    DB_PASSWORD = {PASSWORD}"),
        format!("DB_PASSWORD = '{PASSWORD}\nHOST = db.example.com"),
    ] {
        let ws = Workspace::with_cluster(sources.path(), &cluster, "");
        for binary in ["create_tables", "etl", "analysis"] {
            let out = ws.cmd(binary).assert().code(1);
            let output = format!(
                "{}{}",
                String::from_utf8_lossy(&out.get_output().stdout),
                String::from_utf8_lossy(&out.get_output().stderr)
            );
            assert!(
                !output.contains(PASSWORD),
                "{binary} showed the password: {output}"
            );
            assert!(output.contains("[CLUSTER] "), "{binary}: {output}");
            assert!(output.contains("on one line"), "{binary}: {output}");
        }
    }
}

#[cfg(unix)]
#[test]
fn a_config_holding_a_password_warns_when_others_can_read_it() {
    use std::os::unix::fs::PermissionsExt;
    let sources = tempfile::tempdir().unwrap();
    sources_with_log_lines(sources.path(), "");
    let ws = Workspace::new(sources.path(), "");
    let warned = |mode: u32| {
        fs::set_permissions(ws.config(), fs::Permissions::from_mode(mode)).unwrap();
        let out = ws.cmd("etl").arg("--dry-run").assert().success();
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        assert!(!stderr.contains(PASSWORD), "{stderr}");
        assert!(
            stderr.matches("chmod 600").count() <= 1,
            "warned more than once: {stderr}"
        );
        stderr.contains("readable by") && stderr.contains("chmod 600")
    };
    assert!(warned(0o644));
    assert!(warned(0o640));
    assert!(!warned(0o600));
}

#[test]
fn nul_bytes_impossible_times_and_broken_song_files_are_single_rejects() {
    let sources = tempfile::tempdir().unwrap();
    hostile_sources(sources.path());
    let ws = Workspace::new(sources.path(), "MAX_ERRORS=5");
    let summary = ws.create_and_load();
    assert!(summary.contains("5 rejected record(s)"), "{summary}");
    let rejects = ws.dump("(SELECT file, line, reason, raw_text FROM load_errors)");
    assert_eq!(rejects.len(), HOSTILE_REJECTS.len(), "{rejects:#?}");
    for (file, line, reason) in HOSTILE_REJECTS {
        let line = line.map_or("Null".to_string(), |l| format!("BigInt({l})"));
        assert!(
            rejects
                .iter()
                .any(|r| r.contains(&format!("{file}\")|{line}|Text(\"{reason}"))),
            "no reject {file}:{line} {reason} in {rejects:#?}"
        );
    }
    // The raw text of the zero-filled tail is escaped, never a NUL.
    let tail = ws.dump("(SELECT raw_text FROM load_errors WHERE line = 5)");
    assert!(tail[0].contains("\\\\u{0}\\\\u{0}"), "{tail:?}");
    assert_eq!(
        ws.count("SELECT COUNT(*) FROM load_errors WHERE contains(raw_text, chr(0))"),
        0
    );
    // The good records around them are in: both logged-in plays' neighbours and SO2, SO4.
    assert_eq!(ws.count("SELECT COUNT(*) FROM staging_events"), 2);
    assert_eq!(
        ws.count("SELECT COUNT(*) FROM staging_songs WHERE song_id IN ('SO2', 'SO4')"),
        2
    );
}

#[test]
fn a_second_writer_is_told_another_load_holds_the_warehouse_or_waits() {
    let sources = tempfile::tempdir().unwrap();
    sources_with_log_lines(sources.path(), "");
    let ws = Workspace::new(sources.path(), "");
    ws.cmd("create_tables").assert().success();
    // Another process holds the file (as a running etl does): this test's own connection.
    let holder = duckdb::Connection::open(ws.duckdb()).unwrap();
    ws.cmd("etl")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "another load holds the warehouse (duckdb ",
        ))
        .stderr(predicate::str::contains(format!(
            "(PID {})",
            std::process::id()
        )))
        .stderr(predicate::str::contains("wait for it to finish"));
    // With --lock-timeout the second run waits for the first to end, then loads.
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        drop(holder);
    });
    let started = Instant::now();
    ws.cmd("etl")
        .args(["--lock-timeout", "20"])
        .assert()
        .success();
    assert!(started.elapsed() >= Duration::from_millis(1000));
    release.join().unwrap();
}

#[test]
fn a_killed_run_leaves_the_warehouse_as_it_was_and_the_next_run_succeeds() {
    let small = tempfile::tempdir().unwrap();
    sources_with_log_lines(small.path(), "");
    let big = common::generated(3000, 200_000, 3);
    let ws = Workspace::new(small.path(), "");
    ws.create_and_load();
    let before: Vec<_> = STAR_AND_STAGING.iter().map(|t| ws.dump(t)).collect();
    ws.write_config(big.path(), "");
    for marker in ["loading", "transforming"] {
        assert!(
            kill_etl_at(&ws.config(), &[], marker),
            "etl ended before it could be killed at {marker}"
        );
        let after: Vec<_> = STAR_AND_STAGING.iter().map(|t| ws.dump(t)).collect();
        assert!(
            before == after,
            "a run killed at {marker} changed the warehouse"
        );
    }
    ws.cmd("etl").assert().success();
    assert!(ws.count("SELECT COUNT(*) FROM songplays") > 1000);
}

#[test]
fn answers_cannot_drive_a_terminal_or_a_spreadsheet() {
    let sources = tempfile::tempdir().unwrap();
    sources_with_log_lines(sources.path(), "");
    let title = "=HYPERLINK(\\\"http://x\\\")\\u001b[2J";
    let song = sources.path().join("song_data/A/B/C/TRABC.json");
    let text = fs::read_to_string(&song).unwrap();
    fs::write(
        &song,
        text.replace("\"title\": \"S\"", &format!("\"title\": \"{title}\"")),
    )
    .unwrap();
    let log = sources
        .path()
        .join("log_data/2018/11/2018-11-01-events.json");
    let text = fs::read_to_string(&log).unwrap();
    fs::write(
        &log,
        text.replace("\"song\":\"S\"", &format!("\"song\":\"{title}\"")),
    )
    .unwrap();
    let ws = Workspace::new(sources.path(), "");
    ws.create_and_load();
    assert_eq!(
        ws.count("SELECT COUNT(*) FROM songplays WHERE song_id = 'SO1'"),
        1
    );
    let table = ws
        .cmd("analysis")
        .args(["--query", "top_songs"])
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&table.get_output().stdout).to_string();
    assert!(!stdout.contains('\u{1b}'), "{stdout}");
    assert!(stdout.contains("\\u{1b}[2J"), "{stdout}");
    ws.cmd("analysis")
        .args(["--query", "top_songs", "--format", "csv"])
        .assert()
        .success()
        .stdout(predicate::str::contains("'=HYPERLINK("));
}
