//! The command line as scripts and people lean on it, through the real binaries: a server that
//! never answers, a reader that closes the pipe or a full disk, many readers of one DuckDB file,
//! a mistyped warehouse path, a file another process writes, an empty warehouse.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{sources_with_log_lines, Workspace};
use predicates::prelude::*;

/// A workspace over a small source tree, created and loaded.
fn loaded() -> (tempfile::TempDir, Workspace) {
    let sources = tempfile::tempdir().unwrap();
    sources_with_log_lines(sources.path(), "");
    let ws = Workspace::new(sources.path(), "");
    ws.create_and_load();
    (sources, ws)
}

/// The binary `name` with the workspace's config, as a plain process (for pipes and files).
fn process(ws: &Workspace, name: &str) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin(name));
    cmd.arg("--config").arg(ws.config()).env_remove("RUST_LOG");
    cmd
}

#[test]
fn a_server_that_accepts_but_never_answers_times_out_naming_host_and_port() {
    // Accepts every connection and holds it, saying nothing, as a wrong port can.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    let sources = tempfile::tempdir().unwrap();
    sources_with_log_lines(sources.path(), "");
    let ws = Workspace::with_cluster(
        sources.path(),
        &format!(
            "HOST=127.0.0.1\nDB_PORT={port}\nDB_NAME=test\nDB_USER=root\nSSLMODE=disable\n\
             CONNECT_TIMEOUT=1"
        ),
        "",
    );
    let started = Instant::now();
    ws.cmd("create_tables")
        .timeout(Duration::from_secs(30))
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "no PostgreSQL answer at 127.0.0.1:{port} within 1 s"
        )))
        .stderr(predicate::str::contains("CONNECT_TIMEOUT"));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "gave up after {:?}",
        started.elapsed()
    );

    // The TLS handshake is held to the same limit.
    ws.write_config_with_cluster(
        sources.path(),
        &format!(
            "HOST=127.0.0.1\nDB_PORT={port}\nDB_NAME=test\nDB_USER=root\nSSLMODE=require\n\
             CONNECT_TIMEOUT=1"
        ),
        "",
    );
    ws.cmd("create_tables")
        .timeout(Duration::from_secs(30))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no PostgreSQL answer"));

    // Zero would never connect: refused, naming the key.
    ws.write_config_with_cluster(
        sources.path(),
        &format!("HOST=127.0.0.1\nDB_PORT={port}\nCONNECT_TIMEOUT=0"),
        "",
    );
    ws.cmd("create_tables")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "[CLUSTER] CONNECT_TIMEOUT = \"0\" is not valid",
        ));
}

#[test]
fn a_closed_pipe_ends_quietly_and_a_full_disk_is_an_error() {
    let (_sources, ws) = loaded();
    for args in [
        &["analysis", "--format", "json"][..],
        &["analysis"][..],
        &["check"][..],
        &["etl", "--dry-run"][..],
    ] {
        // The reader goes away before the binary writes: as `| head -c 0` does.
        let mut child = process(&ws, args[0])
            .args(&args[1..])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("error"), "{args:?}: {stderr}");
    }
    if std::path::Path::new("/dev/full").exists() {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = process(&ws, "analysis").stdout(full).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.starts_with("error: cannot write the results to standard output"),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn any_number_of_readers_share_a_duckdb_file() {
    let (_sources, ws) = loaded();
    let readers: Vec<_> = (0..4)
        .map(|n| {
            let binary = if n % 2 == 0 { "analysis" } else { "check" };
            process(&ws, binary)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for reader in readers {
        let out = reader.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn readers_never_create_a_warehouse_and_name_the_setting() {
    let sources = tempfile::tempdir().unwrap();
    sources_with_log_lines(sources.path(), "");
    let ws = Workspace::new(sources.path(), "");
    for binary in ["analysis", "check"] {
        ws.cmd(binary)
            .assert()
            .code(1)
            .stderr(predicate::str::contains(format!(
                "no warehouse at {}: check [WAREHOUSE] DUCKDB_PATH, or run etl (its first run \
                 creates it)",
                ws.duckdb().display()
            )));
        assert!(!ws.duckdb().exists(), "{binary} made the file");
    }
    // etl makes it, and says so before and after the work.
    ws.cmd("etl")
        .assert()
        .success()
        .stderr(predicate::str::contains(format!(
            "into duckdb {}",
            ws.duckdb().display()
        )))
        .stdout(predicate::str::contains("created 11 tables"));
}

#[test]
fn a_reader_is_told_who_writes_the_file() {
    let (_sources, ws) = loaded();
    // This process writes the file, as a running etl would.
    let writer = duckdb::Connection::open(ws.duckdb()).unwrap();
    let out = ws
        .cmd("analysis")
        .args(["--lock-timeout", "0"])
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        stderr.contains(&format!("duckdb {} is in use by ", ws.duckdb().display()))
            && stderr.contains(&format!(
                "(PID {}); waited 0 s: wait for it to finish",
                std::process::id()
            )),
        "{stderr}"
    );
    assert!(!stderr.contains("writable"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    drop(writer);
    ws.cmd("analysis").assert().success();
}

#[test]
fn an_empty_warehouse_says_etl_fills_it() {
    let sources = tempfile::tempdir().unwrap();
    sources_with_log_lines(sources.path(), "");
    let ws = Workspace::new(sources.path(), "");
    ws.cmd("create_tables").assert().success();
    ws.cmd("analysis")
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "holds no plays yet: run etl to fill it",
        ));
    ws.cmd("etl").assert().success();
    ws.cmd("analysis")
        .assert()
        .success()
        .stderr(predicate::str::contains("no plays").not());
}

#[test]
fn typos_in_the_config_are_named_with_the_key_meant_and_strict_makes_them_errors() {
    let sources = tempfile::tempdir().unwrap();
    sources_with_log_lines(sources.path(), "");
    let typos = "ENGIN = postgres\nDUCKDB_PTH = elsewhere.duckdb\n[WAREHOUS]\nMAX_ERRORS = 3\n\
                 [LOCLA]\nLOG_DATA = x\n[SPARKIFY]\nA = b";
    let ws = Workspace::new(sources.path(), typos);
    let expected = [
        "unknown key ENGIN in [WAREHOUSE], ignored: did you mean ENGINE?",
        "unknown key DUCKDB_PTH in [WAREHOUSE], ignored: did you mean DUCKDB_PATH?",
        "unknown section [WAREHOUS], ignored: did you mean [WAREHOUSE]?",
        "unknown section [LOCLA], ignored: did you mean [LOCAL]?",
        "unknown section [SPARKIFY], ignored: the sections are [CLUSTER], [IAM_ROLE]",
    ];
    let out = ws.cmd("create_tables").assert().success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    for line in expected {
        assert!(stderr.contains(line), "{line:?} not in {stderr}");
    }
    // Quiet hides decoration, never a warning: a typo matters most in a scheduled run.
    let out = ws.cmd("create_tables").arg("-q").assert().success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    for line in expected {
        assert!(stderr.contains(line), "-q: {line:?} not in {stderr}");
    }
    // --strict: one error naming them all, and nothing done (nor said to be ignored).
    std::fs::remove_file(ws.duckdb()).unwrap();
    let out = ws.cmd("create_tables").arg("--strict").assert().code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("ignored"), "{stderr}");
    for line in expected {
        let line = line.replace(", ignored", "");
        assert!(stderr.contains(&line), "{line:?} not in {stderr}");
    }
    assert!(!ws.duckdb().exists());
    // The same from the file.
    ws.write_config(sources.path(), &format!("STRICT = true\n{typos}"));
    ws.cmd("create_tables")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("did you mean DUCKDB_PATH?"));
    // A file without typos says nothing.
    ws.write_config(sources.path(), "STRICT = true");
    ws.cmd("create_tables")
        .assert()
        .success()
        .stderr(predicate::str::is_empty());
}

#[test]
fn numbers_out_of_range_are_usage_errors_that_name_the_range() {
    let sources = tempfile::tempdir().unwrap();
    sources_with_log_lines(sources.path(), "");
    let ws = Workspace::new(sources.path(), "");
    for (binary, args, range) in [
        ("analysis", &["--limit", "-1"][..], ", 1 or more"),
        ("analysis", &["--limit", "0"][..], ", 1 or more"),
        ("analysis", &["--limit", "ten"][..], ", 1 or more"),
        ("etl", &["--max-errors", "-1"][..], ", 0 or more"),
        ("etl", &["--lock-timeout", "-5"][..], "from 0 to 31,536,000"),
        (
            "gen_data",
            &["--out", "x", "--songs", "0"][..],
            ", 1 or more",
        ),
        (
            "gen_data",
            &["--out", "x", "--days", "-2"][..],
            "from 1 to 3,650",
        ),
    ] {
        let mut cmd = if binary == "gen_data" {
            assert_cmd::Command::cargo_bin(binary).unwrap()
        } else {
            ws.cmd(binary)
        };
        cmd.current_dir(ws.path())
            .args(args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(format!(
                "invalid value '{}' for '{}",
                args[args.len() - 1],
                args[args.len() - 2]
            )))
            .stderr(predicate::str::contains(range));
    }
    assert!(!ws.path().join("x").exists());
}

#[test]
fn a_question_asked_twice_is_answered_once() {
    let (_sources, ws) = loaded();
    let out = ws
        .cmd("analysis")
        .args([
            "--query",
            "song_count",
            "--query",
            "song_count",
            "--format",
            "json",
        ])
        .assert()
        .success();
    let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let answers = doc["answers"].as_array().unwrap();
    assert_eq!(answers.len(), 1, "{doc}");
    assert_eq!(answers[0]["name"], "song_count");
}

#[test]
fn every_binary_says_its_own_name_and_shows_examples() {
    for binary in [
        "analysis",
        "check",
        "create_tables",
        "etl",
        "gen_data",
        "iac_create",
        "iac_delete",
    ] {
        let out = Command::new(assert_cmd::cargo::cargo_bin(binary))
            .arg("--version")
            .output()
            .unwrap();
        assert!(out.status.success());
        // The release, the commit built and the DuckDB linked in.
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let expected = format!(
            "{binary} {} (commit {}, DuckDB v",
            env!("CARGO_PKG_VERSION"),
            env!("SPARKIFY_COMMIT")
        );
        assert!(
            version.starts_with(&expected) && version.ends_with(')'),
            "{version}"
        );
        assert!(!version.contains("unknown"), "{version}");
        let out = Command::new(assert_cmd::cargo::cargo_bin(binary))
            .arg("--help")
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("Examples:"), "{binary} --help: {help}");
        assert!(help.contains(&format!("Usage: {binary}")), "{help}");
    }
}

#[test]
fn ctrl_c_or_sigterm_during_a_duckdb_load_stops_it_commits_nothing_and_exits_130_or_143() {
    let (small, ws) = loaded();
    let before: Vec<_> = common::STAR_AND_STAGING
        .iter()
        .map(|t| ws.dump(t))
        .collect();
    let big = common::generated(3000, 100_000, 7);
    ws.write_config(big.path(), "");
    for (signal, marker) in [("INT", "transforming"), ("TERM", "loading")] {
        let run = common::interrupt_etl_at(&ws.config(), &["--full-refresh"], marker, signal)
            .unwrap_or_else(|| panic!("etl ended before it reached {marker}"));
        common::assert_interrupted(&run, signal, &format!("SIG{signal} at {marker}"));
        let after: Vec<_> = common::STAR_AND_STAGING
            .iter()
            .map(|t| ws.dump(t))
            .collect();
        assert!(
            before == after,
            "SIG{signal} at {marker} changed the warehouse"
        );
    }
    drop(small);
}

#[test]
fn config_errors_say_what_is_missing_in_the_words_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("dwh.cfg");
    let run = |binary: &str, args: &[&str]| {
        let out = Command::new(assert_cmd::cargo::cargo_bin(binary))
            .arg("--config")
            .arg(&config)
            .args(args)
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{binary} {args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        stderr
    };
    // No file: the cause first, then how to get one.
    let stderr = run("etl", &["--dry-run"]);
    assert!(
        stderr.contains(&format!("there is no config file {}", config.display()))
            && stderr.contains("gen_data --out DIR")
            && stderr.trim_end().ends_with("or pass --config PATH"),
        "{stderr}"
    );
    // An empty file: no sources.
    std::fs::write(&config, "").unwrap();
    let stderr = run("etl", &["--dry-run"]);
    assert!(
        stderr.contains("no sources: there is no [LOCAL] section and [S3] has no LOG_DATA"),
        "{stderr}"
    );
    // A header left open.
    std::fs::write(&config, "[CLUSTER]\nHOST =\n\n[WAREHOUSE\nENGINE = auto\n").unwrap();
    let stderr = run("analysis", &[]);
    assert!(
        stderr.contains("line 4: section header not closed: write it as [NAME]"),
        "{stderr}"
    );
    assert!(!stderr.contains("Some("), "{stderr}");
    // A server engine without a server.
    std::fs::write(&config, "[CLUSTER]\nHOST =\n").unwrap();
    let stderr = run("create_tables", &["--engine", "postgres"]);
    assert!(
        stderr.contains("[CLUSTER] HOST is empty, and the postgres engine connects to it"),
        "{stderr}"
    );
    assert!(!stderr.contains("lookup"), "{stderr}");
}

#[test]
fn each_v_adds_detail_and_no_color_is_honoured_on_a_terminal() {
    let (_sources, ws) = loaded();
    let stderr = |args: &[&str]| {
        let out = ws.cmd("etl").args(args).assert().success();
        String::from_utf8_lossy(&out.get_output().stderr).to_string()
    };
    let v = stderr(&["--full-refresh", "-v"]);
    assert!(v.contains("transforming"), "{v}");
    assert!(!v.contains("INSERT INTO songplays"), "{v}");
    let vv = stderr(&["--full-refresh", "-vv"]);
    assert!(vv.contains("duckdb: INSERT INTO songplays"), "{vv}");
    assert!(vv.contains("parsed"), "{vv}");
    assert!(!vv.contains("sentinel-password-123"), "{vv}");
    let vvv = stderr(&["--full-refresh", "-vvv"]);
    assert!(vvv.len() >= vv.len(), "-vvv shows less than -vv");

    // On a terminal (util-linux's `script` gives one): colours, unless NO_COLOR is set.
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("NOTICE: skipping the terminal half: no `script` here");
        return;
    }
    let on_terminal = |no_color: bool| {
        let line = format!(
            "{} --config {} -v --full-refresh",
            assert_cmd::cargo::cargo_bin("etl").display(),
            ws.config().display()
        );
        let mut cmd = Command::new("script");
        cmd.args(["-qec", &line, "/dev/null"])
            .env_remove("RUST_LOG");
        if no_color {
            cmd.env("NO_COLOR", "1");
        } else {
            cmd.env_remove("NO_COLOR");
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert!(on_terminal(false).contains('\u{1b}'), "no colour at all");
    let plain = on_terminal(true);
    assert!(plain.contains("transforming"), "{plain}");
    // indicatif's bars may still move the cursor; no colour code (ESC[...m) is left.
    assert!(
        !plain.contains("\u{1b}[2m") && !plain.contains("\u{1b}[32m"),
        "{plain:?}"
    );
}

#[test]
fn an_unreachable_s3_is_one_line_saying_what_failed_and_what_to_check() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("dwh.cfg");
    // Nothing listens on port 1 of loopback; `.invalid` never resolves (RFC 2606).
    for (endpoint, what) in [
        ("http://127.0.0.1:1", "the connection was refused"),
        ("http://sparkify.invalid", "could not be resolved (DNS)"),
    ] {
        std::fs::write(
            &config,
            format!(
                "[S3]\nLOG_DATA = s3://bucket/log_data\nSONG_DATA = s3://bucket/song_data\n\
                 LOG_JSONPATH = s3://bucket/log_json_path.json\nREGION = us-west-2\n\
                 ENDPOINT = {endpoint}\nATTEMPT_TIMEOUT = 2\n"
            ),
        )
        .unwrap();
        let out = Command::new(assert_cmd::cargo::cargo_bin("etl"))
            .arg("--config")
            .arg(&config)
            .arg("--dry-run")
            .env_remove("RUST_LOG")
            .env_remove("AWS_ENDPOINT_URL")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("[S3] LOG_JSONPATH = s3://bucket/log_json_path.json"),
            "{stderr}"
        );
        assert!(stderr.contains(what), "{what:?} not in {stderr}");
        for dump in [
            "DispatchFailure",
            "ConnectorError",
            "point it at the JSONPaths",
        ] {
            assert!(!stderr.contains(dump), "{stderr}");
        }
    }
}

#[test]
fn a_silent_s3_endpoint_says_each_attempt_at_v_and_the_total_when_it_gives_up() {
    // A listener that takes connections and never answers, for at most a minute.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        let until = Instant::now() + Duration::from_secs(60);
        while Instant::now() < until {
            if let Ok((stream, _)) = listener.accept() {
                held.push(stream);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("dwh.cfg");
    std::fs::write(
        &config,
        format!(
            "[S3]\nLOG_DATA = s3://bucket/log_data\nSONG_DATA = s3://bucket/song_data\n\
             LOG_JSONPATH = s3://bucket/log_json_path.json\nREGION = us-west-2\n\
             ENDPOINT = {endpoint}\nATTEMPT_TIMEOUT = 1\n"
        ),
    )
    .unwrap();
    let started = Instant::now();
    let out = Command::new(assert_cmd::cargo::cargo_bin("etl"))
        .arg("--config")
        .arg(&config)
        .args(["--dry-run", "-v"])
        .env_remove("RUST_LOG")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_S3")
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "not-a-real-secret")
        .output()
        .unwrap();
    let waited = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let attempts = stderr.matches("an S3 request attempt failed").count();
    assert!(attempts >= 2, "{attempts} attempts said: {stderr}");
    let error = stderr.lines().find(|l| l.starts_with("error: ")).unwrap();
    assert!(
        error.contains("no answer in time") && error.contains("up to 5 attempts"),
        "{error}"
    );
    assert!(error.contains("gave up after "), "{error}");
    assert!(!stderr.contains("not-a-real-secret"), "{stderr}");
    assert!(waited < Duration::from_secs(45), "{waited:?}");
}

/// The README and the pages of `docs/`, with their paths.
fn documentation() -> Vec<(std::path::PathBuf, String)> {
    let mut pages = vec![common::repo().join("README.md")];
    let mut docs: Vec<_> = std::fs::read_dir(common::repo().join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            (path, text)
        })
        .collect()
}

/// The flags the README and docs give each binary, from every command line in them (`etl
/// --full-refresh`, `analysis --format json > answers.json`, ...): a flag is a word starting
/// with `-` after the binary's name, up to the end of that command (a backtick, `|`, `;`, `&&`,
/// `>` or the line's end).
fn readme_flags() -> Vec<(String, String)> {
    const BINARIES: [&str; 7] = [
        "analysis",
        "check",
        "create_tables",
        "etl",
        "gen_data",
        "iac_create",
        "iac_delete",
    ];
    let pages = documentation();
    let mut found = Vec::new();
    for line in pages.iter().flat_map(|(_, text)| text.lines()) {
        let words: Vec<&str> = line.split_whitespace().collect();
        for (at, word) in words.iter().enumerate() {
            let name = word.trim_start_matches(['`', '(', '$']);
            let Some(binary) = BINARIES.iter().find(|b| **b == name) else {
                continue;
            };
            for next in &words[at + 1..] {
                if next.starts_with(['|', ';', '>', '&']) || *next == "&&" {
                    break;
                }
                let ends = next.contains('`');
                let flag = next
                    .trim_matches(['`', ',', '.', ':', ')', '(', '"', '\'', '*'])
                    .split('=')
                    .next()
                    .unwrap_or_default();
                let is_flag = flag.starts_with('-')
                    && flag.len() > 1
                    && !flag[1..].starts_with(|c: char| c.is_ascii_digit());
                if is_flag {
                    found.push((binary.to_string(), flag.to_string()));
                }
                if ends {
                    break;
                }
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

#[test]
fn every_flag_the_readme_and_docs_give_a_binary_is_one_it_takes() {
    let flags = readme_flags();
    assert!(
        flags
            .iter()
            .any(|(b, f)| b == "etl" && f == "--full-refresh"),
        "the README scan found too little: {flags:?}"
    );
    let mut missing = Vec::new();
    for (binary, flag) in &flags {
        let help = Command::new(assert_cmd::cargo::cargo_bin(binary))
            .arg("--help")
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&help.stdout);
        // -vv is -v given twice; a long flag is shown as itself, a short one as `-x,`.
        let wanted = if flag.starts_with("--") {
            flag.clone()
        } else {
            format!("{},", &flag[..2])
        };
        if !help.contains(&wanted) {
            missing.push(format!("{binary} {flag}"));
        }
    }
    assert!(
        missing.is_empty(),
        "the README or docs name flags the binaries do not take: {missing:?}"
    );
}

/// A heading's anchor as GitHub makes it: lower case, spaces to `-`, other punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn every_link_of_the_readme_and_docs_resolves_to_a_file_and_heading() {
    let pages = documentation();
    let mut checked = 0;
    let mut broken = Vec::new();
    for (page, text) in &pages {
        let dir = page.parent().unwrap();
        for (at, _) in text.match_indices("](") {
            let rest = &text[at + 2..];
            let target = &rest[..rest.find(')').unwrap()];
            if target.starts_with("http://") || target.starts_with("https://") {
                continue;
            }
            checked += 1;
            let (file, heading) = target.split_once('#').unwrap_or((target, ""));
            let path = if file.is_empty() {
                page.clone()
            } else {
                dir.join(file)
            };
            if !path.exists() {
                broken.push(format!("{}: {target} (no such file)", page.display()));
                continue;
            }
            if !heading.is_empty() {
                let linked = std::fs::read_to_string(&path).unwrap();
                let found = linked
                    .lines()
                    .filter_map(|l| {
                        l.trim_start_matches('#')
                            .strip_prefix(' ')
                            .filter(|_| l.starts_with('#'))
                    })
                    .any(|h| anchor(h) == heading);
                if !found {
                    broken.push(format!("{}: {target} (no such heading)", page.display()));
                }
            }
        }
    }
    assert!(checked >= 10, "too few links found: {checked}");
    assert!(broken.is_empty(), "broken links: {broken:#?}");
}

#[test]
fn the_readmes_etl_sample_is_what_etl_prints_on_the_bundled_data() {
    let readme = std::fs::read_to_string(common::repo().join("README.md")).unwrap();
    let sample: Vec<&str> = readme
        .split("`etl` prints what it did")
        .nth(1)
        .and_then(|rest| rest.split("```\n").nth(1))
        .expect("the README shows etl's output")
        .lines()
        .collect();
    // The README's first run: etl alone, into a warehouse that does not exist yet.
    let ws = Workspace::new(&common::repo().join("data"), "");
    let out = ws.cmd("etl").assert().success();
    let printed = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let printed: Vec<&str> = printed.lines().collect();
    // The header names the warehouse (a path of the run's own); what was created, loaded,
    // read, matched and checked is exact; the time and memory are the run's own.
    assert!(
        sample[0].starts_with("etl into duckdb ") && printed[0].starts_with("etl into duckdb ")
    );
    let exact = |lines: &[&str]| -> Vec<String> {
        lines
            .iter()
            .filter(|l| !l.starts_with("time: ") && !l.starts_with("peak memory: "))
            .skip(1)
            .map(|l| l.to_string())
            .collect()
    };
    assert_eq!(
        exact(&sample),
        exact(&printed),
        "README:\n{sample:#?}\netl:\n{printed:#?}"
    );
    for start in ["time: discover ", "peak memory: "] {
        assert!(sample.iter().any(|l| l.starts_with(start)), "{start}");
        assert!(printed.iter().any(|l| l.starts_with(start)), "{start}");
    }
}

/// A warning reads as a compiler's does, `warning: ...`, with no timestamp or level column,
/// with -q as without it.
#[test]
fn warnings_read_warning_colon_without_a_timestamp() {
    let ws = Workspace::new(&common::repo().join("data"), "DUCKDB_PTH=elsewhere.duckdb");
    for args in [&[][..], &["-q"][..]] {
        let out = ws.cmd("check").args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let line = stderr
            .lines()
            .find(|l| l.contains("DUCKDB_PTH"))
            .unwrap_or_else(|| panic!("no warning about DUCKDB_PTH: {stderr}"));
        assert!(
            line.starts_with("warning: ") && line.contains("did you mean DUCKDB_PATH?"),
            "{line}"
        );
    }
}

/// `gen_data` prints the `[LOCAL]` lines that load what it wrote: pasted into an empty
/// `dwh.cfg` in another directory, `etl` loads it.
#[test]
fn gen_data_prints_the_config_lines_that_load_its_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(assert_cmd::cargo::cargo_bin("gen_data"))
        .args(["--songs", "20", "--events", "200", "--out"])
        .arg(dir.path().join("gen"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines = &stdout[stdout.find("[LOCAL]").expect("the [LOCAL] lines")..];
    let run = dir.path().join("elsewhere");
    std::fs::create_dir(&run).unwrap();
    std::fs::write(run.join("dwh.cfg"), lines).unwrap();
    let etl = Command::new(assert_cmd::cargo::cargo_bin("etl"))
        .current_dir(&run)
        .arg("-q")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(
        etl.status.success(),
        "{}",
        String::from_utf8_lossy(&etl.stderr)
    );
    assert!(run.join("sparkify.duckdb").exists());
}

/// Yes-or-no settings take what Python's configparser takes (`yes`, `on`, `1`, ...), as the
/// original project's reader did; anything else names the words accepted.
#[test]
fn yes_or_no_settings_read_as_configparser_reads_them() {
    for (strict, refused) in [
        ("yes", true),
        ("On", true),
        ("1", true),
        ("no", false),
        ("off", false),
    ] {
        let ws = Workspace::new(
            &common::repo().join("data"),
            &format!("STRICT = {strict}\nDUCKDB_PTH = x.duckdb"),
        );
        let out = ws.cmd("etl").arg("--dry-run").output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            !out.status.success(),
            refused,
            "STRICT = {strict}: {stderr}"
        );
    }
    let ws = Workspace::new(&common::repo().join("data"), "STRICT = maybe");
    let out = ws.cmd("etl").arg("--dry-run").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("yes/no, on/off, 1/0"), "{stderr}");
}

/// `analysis --print-sql` shows the query of each question in the chosen engine's dialect and
/// opens no warehouse: no file is created, none needs to exist.
#[test]
fn analysis_prints_its_queries_without_a_warehouse() {
    let ws = Workspace::new(&common::repo().join("data"), "");
    let out = ws.cmd("analysis").arg("--print-sql").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sql = String::from_utf8(out.stdout).unwrap();
    for query in sparkify::sql::ANALYSIS_QUERIES {
        assert!(
            sql.contains(&format!("-- {}: {}", query.name, query.title)),
            "{sql}"
        );
    }
    assert!(sql.matches("SELECT ").count() >= 13, "{sql}");
    assert!(!ws.duckdb().exists(), "a warehouse was created");
    let out = ws
        .cmd("analysis")
        .args([
            "--print-sql",
            "--engine",
            "redshift",
            "--query",
            "top_songs",
        ])
        .output()
        .unwrap();
    let sql = String::from_utf8(out.stdout).unwrap();
    assert!(sql.contains("GROUP BY song_id, LENGTH(song_id)"), "{sql}");
    assert!(!sql.contains("-- top_artists"), "{sql}");
}

/// `-v` says what each binary logs: only those that send SQL speak of SQL statements.
#[test]
fn each_binary_says_what_its_verbose_levels_log() {
    for (binary, sends_sql) in [
        ("etl", true),
        ("create_tables", true),
        ("check", true),
        ("analysis", true),
        ("gen_data", false),
        ("iac_create", false),
        ("iac_delete", false),
    ] {
        let out = Command::new(assert_cmd::cargo::cargo_bin(binary))
            .arg("--help")
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        let verbose = &help[help.find("--verbose").expect("a -v flag")..];
        let verbose = &verbose[..verbose.find("RUST_LOG").expect("its text")];
        assert_eq!(verbose.contains("SQL"), sends_sql, "{binary}: {verbose}");
    }
}

/// CSV is one table: several answers in one stream would not be CSV, so `--format csv` asks for
/// one question and says how to get the others.
#[test]
fn csv_is_refused_for_several_questions_and_given_for_one() {
    let ws = Workspace::new(&common::repo().join("data"), "");
    ws.cmd("etl").arg("-q").assert().success();
    let out = ws
        .cmd("analysis")
        .args(["--format", "csv"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("pass --query NAME"), "{stderr}");
    assert!(out.stdout.is_empty());
    let out = ws
        .cmd("analysis")
        .args(["--format", "csv", "--query", "top_songs", "--limit", "2"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let csv = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "song_id,title,artist,plays");
    assert_eq!(lines.len(), 3, "{csv}");
}

/// `-h` is one line per flag and no prose (the details and the examples are in `--help`), so it
/// fits on a screen; `--help` keeps every word.
#[test]
fn short_help_is_one_line_per_flag_and_long_help_teaches() {
    for binary in [
        "etl",
        "create_tables",
        "check",
        "analysis",
        "gen_data",
        "iac_create",
        "iac_delete",
    ] {
        let help = |flag: &str| {
            let out = Command::new(assert_cmd::cargo::cargo_bin(binary))
                .arg(flag)
                .env_remove("COLUMNS")
                .output()
                .unwrap();
            assert!(out.status.success(), "{binary} {flag}");
            String::from_utf8(out.stdout).unwrap()
        };
        let (short, long) = (help("-h"), help("--help"));
        let options = &short[short.find("Options:").expect("an options list")..];
        for line in options.lines().skip(1).filter(|l| !l.trim().is_empty()) {
            assert!(
                line.trim_start().starts_with('-'),
                "{binary} -h: a flag's help runs onto a second line: {line:?}\n{short}"
            );
        }
        let before_usage = short[..short.find("Usage:").unwrap()].lines().count();
        assert!(
            before_usage <= 3,
            "{binary} -h: {before_usage} lines before Usage\n{short}"
        );
        assert!(
            !short.contains("Examples:"),
            "{binary} -h shows the examples\n{short}"
        );
        assert!(
            long.contains("Examples:"),
            "{binary} --help lost its examples"
        );
        assert!(
            long.lines().count() > 2 * short.lines().count(),
            "{binary}: --help should hold the details -h leaves out"
        );
    }
}

/// On a terminal the counters move while the work runs: the records read count up file by file
/// as they are parsed, before the warehouse has taken them all, and the checks count up to 29.
/// Run in a real pseudo-terminal through util-linux `script`, on 8,000 song files (four chunks
/// of 2,048) and 20,000 events.
#[test]
fn progress_counters_move_on_a_terminal() {
    let sample = common::generated(8_000, 20_000, 7);
    let sample = sample.path();
    if Command::new("script").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "util-linux script is needed for the terminal test under CI=true"
        );
        eprintln!("NOTICE: skipping: util-linux script is absent");
        return;
    }
    let ws = Workspace::new(sample, "");
    let command = format!(
        "'{}' --config '{}'",
        assert_cmd::cargo::cargo_bin("etl").display(),
        ws.config().display()
    );
    let typescript = ws.dir.path().join("terminal.txt");
    let run = Command::new("script")
        .args(["-qfec", &command])
        .arg(&typescript)
        .current_dir(ws.dir.path())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    let drawn = std::fs::read_to_string(&typescript).unwrap();
    let counts = |after: &str| -> Vec<u64> {
        drawn
            .match_indices(after)
            .filter_map(|(at, _)| {
                let before = drawn[..at].trim_end();
                let digits: String = before
                    .chars()
                    .rev()
                    .take_while(|c| c.is_ascii_digit() || *c == ',')
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .filter(char::is_ascii_digit)
                    .collect();
                digits.parse().ok()
            })
            .collect()
    };
    let records = counts(" records read");
    assert!(
        records.iter().any(|&n| n > 0 && n < 8_000),
        "no count of records read between none and all was drawn: {records:?}\n{drawn}"
    );
    let checks = counts("/29 quality checks");
    assert!(
        checks.iter().any(|&n| n > 0),
        "the checks were never counted: {checks:?}\n{drawn}"
    );
}
