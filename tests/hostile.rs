//! Input real pipelines meet, through the real binaries on DuckDB: a mistyped `dwh.cfg`, files
//! that cannot be read, NULs and impossible times in a log, a log larger than a chunk, a
//! second writer, a killed run, and data that would drive a terminal or a spreadsheet. Then
//! what other people and programs on the machine can do to a run: a listener on the database's
//! port asking for the password in clear, special files in the source tree or named by the
//! config, links that lead to a directory twice, file names that are not UTF-8, a file that is
//! not DuckDB's at DUCKDB_PATH, a server that goes silent, and secrets in the libraries' logs.
//! The PostgreSQL side of the same cases is in `tests/postgres.rs`.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use assert_cmd::Command;
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
    assert!(summary.contains("5 rejected records"), "{summary}");
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
    let title = "=HYPERLINK(\\\"http://x\\\")\\u001b[2Jgnp\\u202e.exe";
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
    // A direction override would show the title's end reversed.
    assert!(!stdout.contains('\u{202e}'), "{stdout}");
    assert!(stdout.contains("gnp\\u{202e}.exe"), "{stdout}");
    ws.cmd("analysis")
        .args(["--query", "top_songs", "--format", "csv"])
        .assert()
        .success()
        .stdout(predicate::str::contains("'=HYPERLINK("));
}

/// What a fake PostgreSQL server on loopback does after the startup message.
#[derive(Clone, Copy)]
enum FakeServer {
    /// Asks for the password: 3 (clear text) or 5 (MD5), as an attacker's listener would.
    AsksPassword(u32),
    /// Says the client is in, then never answers a query.
    Silent,
}

/// A fake PostgreSQL server on 127.0.0.1 behaving as `behaviour` on each connection (answering
/// `N` to SSLRequest, so the channel stays plain); returns its port and every byte clients sent
/// after their startup message.
fn fake_postgres(behaviour: FakeServer) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<u8>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let seen = seen.clone();
            std::thread::spawn(move || {
                let read_message = |stream: &mut std::net::TcpStream| -> Option<Vec<u8>> {
                    let mut length = [0u8; 4];
                    stream.read_exact(&mut length).ok()?;
                    let length = u32::from_be_bytes(length) as usize;
                    let mut body = vec![0u8; length.saturating_sub(4)];
                    stream.read_exact(&mut body).ok()?;
                    Some(body)
                };
                let Some(mut first) = read_message(&mut stream) else {
                    return;
                };
                if first.starts_with(&80877103u32.to_be_bytes()) {
                    stream.write_all(b"N").unwrap();
                    let Some(startup) = read_message(&mut stream) else {
                        return;
                    };
                    first = startup;
                }
                // A cancel request (code 80877102) carries no startup: nothing to answer.
                if first.starts_with(&80877102u32.to_be_bytes()) {
                    return;
                }
                let mut reply = vec![b'R'];
                match behaviour {
                    FakeServer::AsksPassword(code) => {
                        let salt: &[u8] = if code == 5 { &[1, 2, 3, 4] } else { &[] };
                        reply.extend_from_slice(&(8 + salt.len() as u32).to_be_bytes());
                        reply.extend_from_slice(&code.to_be_bytes());
                        reply.extend_from_slice(salt);
                    }
                    FakeServer::Silent => {
                        reply.extend_from_slice(&8u32.to_be_bytes());
                        reply.extend_from_slice(&0u32.to_be_bytes());
                        // BackendKeyData, then ReadyForQuery (idle).
                        reply.push(b'K');
                        reply.extend_from_slice(&12u32.to_be_bytes());
                        reply.extend_from_slice(&42u32.to_be_bytes());
                        reply.extend_from_slice(&7u32.to_be_bytes());
                        reply.extend_from_slice(b"Z\0\0\0\x05I");
                    }
                }
                stream.write_all(&reply).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(20)))
                    .unwrap();
                let mut buffer = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buffer) {
                    if n == 0 {
                        break;
                    }
                    seen.lock().unwrap().extend_from_slice(&buffer[..n]);
                }
            });
        }
    });
    (port, received)
}

/// A workspace whose PostgreSQL is the fake server on `port`, with `extra` [CLUSTER] lines.
fn fake_server_workspace(sources: &std::path::Path, port: u16, extra: &str) -> Workspace {
    Workspace::with_cluster(
        sources,
        &format!(
            "HOST=127.0.0.1\nDB_PORT={port}\nDB_NAME=dwh\nDB_USER=dwhuser\n\
             DB_PASSWORD={PASSWORD}\nCONNECT_TIMEOUT=5\n{extra}"
        ),
        "ENGINE=postgres",
    )
}

#[test]
fn a_listener_on_the_port_asking_for_the_password_in_clear_or_md5_gets_nothing() {
    let sources = tempfile::tempdir().unwrap();
    sources_with_log_lines(sources.path(), "");
    for code in [3, 5] {
        let (port, received) = fake_postgres(FakeServer::AsksPassword(code));
        let ws = fake_server_workspace(sources.path(), port, "");
        let out = ws.cmd("analysis").assert().code(1);
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        assert!(
            stderr.contains("Nothing was sent") && stderr.contains("REQUIRE_AUTH"),
            "{code}: {stderr}"
        );
        assert!(!stderr.contains(PASSWORD), "{stderr}");
        std::thread::sleep(Duration::from_millis(200));
        let sent = received.lock().unwrap().clone();
        assert!(
            !sent.starts_with(b"p") && !String::from_utf8_lossy(&sent).contains(PASSWORD),
            "method {code}: the client answered {sent:?}"
        );
    }
    // The user's opt-in sends it: the listener above would have had it.
    let (port, received) = fake_postgres(FakeServer::AsksPassword(3));
    let ws = fake_server_workspace(sources.path(), port, "REQUIRE_AUTH=password");
    ws.cmd("analysis").assert().code(1);
    let deadline = Instant::now() + Duration::from_secs(5);
    while received.lock().unwrap().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let sent = String::from_utf8_lossy(&received.lock().unwrap()).to_string();
    assert!(sent.starts_with('p') && sent.contains(PASSWORD), "{sent:?}");
}

#[cfg(unix)]
#[test]
fn the_first_signal_ends_a_run_whose_server_went_silent_within_seconds() {
    let sources = tempfile::tempdir().unwrap();
    sources_with_log_lines(sources.path(), "");
    let (port, _) = fake_postgres(FakeServer::Silent);
    let ws = fake_server_workspace(sources.path(), port, "");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("analysis"))
        .arg("--config")
        .arg(ws.config())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Connected, and waiting for an answer that never comes.
    std::thread::sleep(Duration::from_secs(2));
    let signalled = Instant::now();
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(15),
            "still running 15 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert!(signalled.elapsed() < Duration::from_secs(10), "{stderr}");
    assert!(stderr.contains("still not stopped"), "{stderr}");
}

#[cfg(unix)]
#[test]
fn special_files_and_second_paths_in_the_source_tree_are_never_read() {
    let sources = tempfile::tempdir().unwrap();
    sources_with_log_lines(sources.path(), "");
    let ws = Workspace::new(sources.path(), "");
    ws.cmd("create_tables").assert().success();
    // A link to a sibling directory: its events would be read twice.
    std::os::unix::fs::symlink(
        sources.path().join("log_data/2018"),
        sources.path().join("log_data/mirror"),
    )
    .unwrap();
    ws.cmd("etl").assert().success();
    let once = ws.count("SELECT COUNT(*) FROM staging_events");
    assert!(once > 0);
    let first_file = fs::read_dir(sources.path().join("log_data/2018/11"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let lines = fs::read_to_string(&first_file)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count() as i64;
    assert_eq!(once, lines, "every event staged once");
    // A FIFO named like a source file: never opened (no writer would ever come), named.
    let made = std::process::Command::new("mkfifo")
        .arg(sources.path().join("log_data/pipe.json"))
        .status()
        .unwrap();
    assert!(made.success());
    let started = Instant::now();
    let out = ws.cmd("etl").assert().code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        stderr.contains("pipe.json") && stderr.contains("FIFO"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    fs::remove_file(sources.path().join("log_data/pipe.json")).unwrap();
    // Names that are not UTF-8 would be one ledger key: each is unreadable instead.
    use std::os::unix::ffi::OsStrExt;
    let name = std::ffi::OsStr::from_bytes(b"x\xff.json");
    fs::copy(&first_file, sources.path().join("log_data").join(name)).unwrap();
    let out = ws.cmd("etl").assert().code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("not valid UTF-8"), "{stderr}");
    fs::remove_file(sources.path().join("log_data").join(name)).unwrap();
    // A song file far larger than a song: refused unread.
    let huge = fs::File::create(sources.path().join("song_data/huge.json")).unwrap();
    huge.set_len(sparkify::parse::MAX_SONG_FILE_BYTES + 1)
        .unwrap();
    let out = ws.cmd("etl").assert().code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        stderr.contains("huge.json") && stderr.contains("more than the"),
        "{stderr}"
    );
}

#[cfg(unix)]
#[test]
fn special_files_named_by_the_config_fail_at_once() {
    let sources = tempfile::tempdir().unwrap();
    sources_with_log_lines(sources.path(), "");
    let started = Instant::now();
    let out = Command::cargo_bin("etl")
        .unwrap()
        .args(["--config", "/dev/zero"])
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("not a regular file"), "{stderr}");
    // The CA file, read while connecting.
    let ws = Workspace::with_cluster(
        sources.path(),
        &format!("HOST=127.0.0.1\nDB_PORT=5432\nSSLMODE=verify-full\nSSLROOTCERT=/dev/zero\nDB_PASSWORD={PASSWORD}"),
        "ENGINE=postgres",
    );
    let out = ws.cmd("analysis").assert().code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        stderr.contains("SSLROOTCERT") && stderr.contains("not a regular file"),
        "{stderr}"
    );
    // The JSONPaths file swapped for a FIFO.
    let jsonpath = sources.path().join("log_json_path.json");
    fs::remove_file(&jsonpath).unwrap();
    assert!(std::process::Command::new("mkfifo")
        .arg(&jsonpath)
        .status()
        .unwrap()
        .success());
    let ws = Workspace::new(sources.path(), "");
    let out = ws.cmd("etl").assert().code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        stderr.contains("JSONPaths") && stderr.contains("FIFO"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn numbers_beyond_their_bounds_are_config_errors_not_panics() {
    let sources = tempfile::tempdir().unwrap();
    sources_with_log_lines(sources.path(), "");
    for (cluster, warehouse) in [
        ("HOST=\nCONNECT_TIMEOUT=18446744073709551615", ""),
        ("HOST=", "MAX_ERRORS=18446744073709551615"),
    ] {
        let ws = Workspace::with_cluster(sources.path(), cluster, warehouse);
        let out = ws.cmd("etl").assert().code(1);
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        assert!(stderr.contains("a whole number from"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn a_password_wrapped_onto_its_own_line_is_never_printed() {
    let sources = tempfile::tempdir().unwrap();
    sources_with_log_lines(sources.path(), "");
    let ws = Workspace::with_cluster(
        sources.path(),
        &format!("HOST=\nDB_PASSWORD =\n{PASSWORD}"),
        "",
    );
    for strict in [false, true] {
        let mut cmd = ws.cmd("etl");
        if strict {
            cmd.arg("--strict");
        }
        let out = cmd.assert().code(1);
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&out.get_output().stdout),
            String::from_utf8_lossy(&out.get_output().stderr)
        );
        assert!(
            !output
                .to_ascii_lowercase()
                .contains(&PASSWORD.to_ascii_lowercase()),
            "{output}"
        );
        assert!(output.contains("is not KEY = value"), "{output}");
    }
}

#[test]
fn a_file_that_is_not_a_duckdb_database_is_refused_and_left_alone() {
    let sources = tempfile::tempdir().unwrap();
    sources_with_log_lines(sources.path(), "");
    let ws = Workspace::new(sources.path(), "");
    // A SQLite database where the warehouse should be: DuckDB would try to fetch its SQLite
    // scanner and open it through it.
    let sqlite = b"SQLite format 3\0"
        .iter()
        .copied()
        .chain(std::iter::repeat_n(0, 4080))
        .collect::<Vec<u8>>();
    fs::write(ws.duckdb(), &sqlite).unwrap();
    for binary in ["create_tables", "etl", "analysis"] {
        let mut cmd = ws.cmd(binary);
        if binary == "create_tables" {
            cmd.arg("--yes");
        }
        let out = cmd.assert().code(1);
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        assert!(
            stderr.contains("not a DuckDB database"),
            "{binary}: {stderr}"
        );
    }
    assert_eq!(
        fs::read(ws.duckdb()).unwrap(),
        sqlite,
        "the file was changed"
    );
    // A name DuckDB would read another way.
    let ws = Workspace::new(sources.path(), "DUCKDB_PATH=a\\\\b.duckdb");
    let out = ws.cmd("create_tables").arg("--yes").assert().code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("backslash"), "{stderr}");
}

/// /proc is a directory nobody may create files in, root included.
#[cfg(target_os = "linux")]
#[test]
fn a_warehouse_directory_that_cannot_be_written_is_found_before_any_work() {
    let sources = tempfile::tempdir().unwrap();
    sources_with_log_lines(sources.path(), "");
    let ws = Workspace::new(
        sources.path(),
        "DUCKDB_PATH=/proc/sparkify-warehouse.duckdb",
    );
    let out = ws.cmd("etl").assert().code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("cannot write in /proc"), "{stderr}");
    // Said before any file was read.
    assert!(!stderr.contains("log_data read"), "{stderr}");
}

#[test]
fn access_key_ids_never_reach_the_log_even_at_vvv() {
    let sources = tempfile::tempdir().unwrap();
    sources_with_log_lines(sources.path(), "");
    let key = "AKIAIOSFODNN7EXAMPLE";
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let ws = Workspace::new(sources.path(), "");
    // S3 sources at a closed port on loopback: the SDK resolves the identity, signs, and
    // fails; at -vvv its own logs are shown.
    let config = "[S3]\nLOG_DATA=s3://bucket/log_data\nSONG_DATA=s3://bucket/song_data\n\
         LOG_JSONPATH=s3://bucket/log_json_path.json\nENDPOINT=http://127.0.0.1:9\n\
         ATTEMPT_TIMEOUT=1\nREGION=us-west-2\n[WAREHOUSE]\nDUCKDB_PATH=warehouse.duckdb\n";
    fs::write(ws.config(), config).unwrap();
    let out = ws
        .cmd("etl")
        .arg("-vvv")
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_S3")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("HOME", ws.path())
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("aws_"), "no library logs at -vvv: {stderr}");
    // The SDK did print it: the log shows where it was taken out.
    assert!(stderr.contains(sparkify::redact::REDACTED), "{stderr}");
    assert!(!stderr.contains(key), "the access key id was logged");
    assert!(!stderr.contains(secret), "the secret key was logged");
}

#[test]
fn iac_create_tags_with_an_instance_id_it_writes_first_and_refuses_plain_http_for_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dwh.cfg");
    fs::write(
        &path,
        "[CLUSTER]\nHOST=\nDB_NAME=dwh\nDB_USER=dwhuser\nDB_PASSWORD=Sentinel-Passw0rd-987\n\
         [S3]\nLOG_DATA=s3://udacity-dend/log_data\nSONG_DATA=s3://udacity-dend/song_data\n\
         LOG_JSONPATH=s3://udacity-dend/log_json_path.json\n\
         [AWS]\nKEY=AKIDEXAMPLE\nSECRET=sentinel-secret-key\n[DWH]\nDWH_REGION=us-west-2\n",
    )
    .unwrap();
    let run = |endpoint: &str, args: &[&str]| {
        let out = Command::cargo_bin("iac_create")
            .unwrap()
            .arg("--config")
            .arg(&path)
            .args(["--cidr", "203.0.113.7/32", "--timeout", "1"])
            .args(args)
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("HOME", dir.path())
            .env_remove("AWS_ENDPOINT_URL_REDSHIFT_SERVERLESS")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_REGION")
            .output()
            .unwrap();
        (
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    // Plain http to another machine: refused before anything, the id not even made.
    let (code, output) = run("http://192.0.2.1:9", &[]);
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("plain http"), "{output}");
    assert!(!fs::read_to_string(&path)
        .unwrap()
        .contains("DWH_INSTANCE_ID"));
    let (code, output) = run("http://192.0.2.1:9", &["--dry-run"]);
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("plain http"), "{output}");
    // On loopback the run starts: the id is written before the first AWS call (which fails:
    // nothing listens there).
    let (code, output) = run("http://127.0.0.1:9", &[]);
    assert_eq!(code, Some(1), "{output}");
    assert!(!output.contains("plain http"), "{output}");
    let written = fs::read_to_string(&path).unwrap();
    let id = written
        .lines()
        .find_map(|l| l.strip_prefix("DWH_INSTANCE_ID = "))
        .unwrap_or_else(|| panic!("no instance id written: {written}"));
    assert!(sparkify::iac::is_instance_id(id) && id.len() == 16, "{id}");
    // A second run keeps it.
    run("http://127.0.0.1:9", &[]);
    assert!(fs::read_to_string(&path)
        .unwrap()
        .contains(&format!("DWH_INSTANCE_ID = {id}")));
}
