//! The redshift and redshift-data engines' own statements *executed*: `create_tables`, a full
//! `etl`, an incremental day, `check` and every `analysis` question through the real binaries,
//! against the Redshift stand-in on the local PostgreSQL (tests/common/redshift_standin.rs,
//! which lists what it rewrites and why), with sources in the loopback S3 server. Each must give
//! the same tables and answers as DuckDB on the same files.

mod common;
#[path = "common/redshift_standin.rs"]
mod redshift_standin;
#[path = "common/s3_server.rs"]
mod s3_server;

use std::path::Path;

use common::Workspace;
use redshift_standin::StandIn;
use s3_server::{Server, ACCESS_KEY, SECRET_KEY};

/// The tables compared: the star schema and staging (the ledger names files by where they were
/// read, and the rejects' reasons are Redshift's words on one side: they are compared by count).
const COMPARED: [&str; 7] = [
    "songplays",
    "users",
    "songs",
    "artists",
    "time",
    "staging_events",
    "staging_songs",
];

/// A warehouse loaded through one Redshift engine on the stand-in.
struct Remote {
    ws: Workspace,
    standin: StandIn,
    _server: Server,
    root: tempfile::TempDir,
    schema: String,
    engine: &'static str,
}

impl Remote {
    /// `sources` copied into bucket `sparkify` of a loopback S3 server, and a workspace whose
    /// `dwh.cfg` reaches the stand-in through `engine`.
    fn new(sources: &Path, engine: &'static str, max_errors: u64) -> Option<Remote> {
        let root = tempfile::tempdir().unwrap();
        let bucket = root.path().join("sparkify");
        common::copy_tree(sources, &bucket, &|_| true);
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let schema = format!(
            "standin_{}_{}_{}",
            engine.replace('-', "_"),
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let standin = StandIn::start(root.path(), &schema)?;
        let server = Server::start(root.path(), true);
        let ws = Workspace {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::write(
            ws.config(),
            format!(
                "[CLUSTER]\nHOST=localhost\nDB_PORT={port}\nDB_NAME=test\nDB_USER=postgres\n\
                 SSLROOTCERT={cert}\n\
                 [IAM_ROLE]\nARN=arn:aws:iam::123456789012:role/sparkify-standin\n\
                 [DWH]\nDWH_WORKGROUP_NAME=sparkify-standin\nDWH_REGION={region}\n\
                 [S3]\nLOG_DATA=s3://sparkify/log_data\nSONG_DATA=s3://sparkify/song_data\n\
                 LOG_JSONPATH=s3://sparkify/log_json_path.json\nREGION={region}\n\
                 ENDPOINT={endpoint}\nMANIFEST_PREFIX=s3://sparkify/manifests/\n\
                 [WAREHOUSE]\nENGINE={engine}\nSCHEMA={schema}\nMAX_ERRORS={max_errors}\n",
                port = standin.wire_port,
                cert = redshift_standin::CERT,
                region = redshift_standin::REGION,
                endpoint = server.endpoint,
            ),
        )
        .unwrap();
        Some(Remote {
            ws,
            standin,
            _server: server,
            root,
            schema,
            engine,
        })
    }

    /// A binary run in a shell with other AWS settings cleared: the test keys (the loopback S3
    /// server checks them), the stand-in as the Data API's endpoint, another directory.
    fn cmd(&self, binary: &str) -> assert_cmd::Command {
        let mut cmd = self.ws.cmd(binary);
        for name in [
            "AWS_PROFILE",
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_S3",
            "AWS_SESSION_TOKEN",
            "AWS_DEFAULT_REGION",
        ] {
            cmd.env_remove(name);
        }
        cmd.env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_REGION", redshift_standin::REGION)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/aws-credentials",
            )
            .env("AWS_ENDPOINT_URL_REDSHIFT_DATA", &self.standin.data_api)
            .current_dir(self.root.path());
        cmd
    }

    /// Runs `binary` with `args`, which must succeed; its stdout and stderr.
    fn run(&self, binary: &str, args: &[&str]) -> String {
        succeeded(self.cmd(binary).args(args), self.engine)
    }

    /// The sorted rows of `table`, read from PostgreSQL directly (not through the stand-in).
    fn rows(&self, table: &str) -> Vec<String> {
        let read = self.ws.path().join("read.cfg");
        std::fs::write(
            &read,
            format!(
                "[CLUSTER]\nHOST=127.0.0.1\nDB_PORT=5432\nDB_NAME=test\nDB_USER=postgres\n\
                 SSLMODE=disable\n[WAREHOUSE]\nENGINE=postgres\nSCHEMA={}\n",
                self.schema
            ),
        )
        .unwrap();
        rows_of(&read, table)
    }

    fn put(&self, key: &str, text: &str) {
        let path = self.root.path().join("sparkify").join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        self.standin.drop_schema();
    }
}

fn rows_of(config: &Path, table: &str) -> Vec<String> {
    let config = sparkify::config::Config::load(config).unwrap();
    let mut warehouse = sparkify::warehouse::open(&config).unwrap();
    let result = warehouse.query(&format!("SELECT * FROM {table}")).unwrap();
    let mut rows: Vec<String> = result.rows.iter().map(|r| format!("{r:?}")).collect();
    rows.sort();
    rows
}

/// `analysis --format json`'s answers (without the line naming the warehouse).
fn answers(output: &str) -> serde_json::Value {
    let start = output.find('{').expect("a JSON document");
    let mut stream =
        serde_json::Deserializer::from_str(&output[start..]).into_iter::<serde_json::Value>();
    let doc = stream.next().unwrap().unwrap();
    doc["answers"].clone()
}

fn local_run(ws: &Workspace, binary: &str, args: &[&str]) -> String {
    succeeded(ws.cmd(binary).args(args), "duckdb")
}

/// Runs `cmd`, which must succeed on `engine`; its stdout and stderr.
fn succeeded(cmd: &mut assert_cmd::Command, engine: &str) -> String {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} on {engine} failed:\n{text}");
    text
}

/// The same tables, the same number of rejects and the same answers on both.
fn assert_same(local: &Workspace, remote: &Remote, when: &str) {
    for table in COMPARED {
        let (here, there) = (local.rows(None, table), remote.rows(table));
        assert!(
            here == there,
            "{when}: {table} differs between duckdb ({} rows) and {} on the stand-in ({} rows); \
             first differences:\n{:?}\n{:?}",
            here.len(),
            remote.engine,
            there.len(),
            here.iter()
                .filter(|r| !there.contains(r))
                .take(3)
                .collect::<Vec<_>>(),
            there
                .iter()
                .filter(|r| !here.contains(r))
                .take(3)
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(
        local.rows(None, "load_errors").len(),
        remote.rows("load_errors").len(),
        "{when}: the rejects differ in number on {}",
        remote.engine
    );
    let here = answers(&local_run(local, "analysis", &["--format", "json"]));
    let there = answers(&remote.run("analysis", &["--format", "json"]));
    assert_eq!(
        here, there,
        "{when}: analysis answers differ on {}",
        remote.engine
    );
    // `check`: the same verdict and the same failing rows (the edge cases fail two checks).
    let verdict = |out: std::process::Output| {
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let findings: Vec<String> = stderr
            .lines()
            .filter(|l| l.starts_with("error:") || l.starts_with("  "))
            .map(str::to_string)
            .collect();
        (out.status.code(), findings)
    };
    let here = verdict(local.cmd("check").output().unwrap());
    let there = verdict(remote.cmd("check").output().unwrap());
    assert_eq!(here, there, "{when}: check differs on {}", remote.engine);
}

/// Loads `sources` on DuckDB and through `engine` on the stand-in, compares, then adds a day
/// (a late file among the earlier ones, and a file of new plays repeating some known ones) and
/// compares again.
fn full_then_incremental(
    sources: &Path,
    engine: &'static str,
    max_errors: u64,
    etl: &[&str],
    after_full: &dyn Fn(&Remote),
) {
    let Some(remote) = Remote::new(sources, engine, max_errors) else {
        return;
    };
    // The local side reads a copy, so the day can be added to both.
    let local_sources = tempfile::tempdir().unwrap();
    common::copy_tree(sources, local_sources.path(), &|_| true);
    let local = Workspace::new(local_sources.path(), &format!("MAX_ERRORS={max_errors}"));
    local_run(&local, "create_tables", &[]);
    local_run(&local, "etl", etl);

    remote.run("create_tables", &[]);
    let out = remote.run("etl", &[&["-v"], etl].concat());
    assert!(
        !out.contains(SECRET_KEY),
        "the secret key was shown:\n{out}"
    );
    assert!(
        out.contains("Redshift COPY"),
        "etl did not have Redshift copy staging:\n{out}"
    );
    let served = match engine {
        "redshift-data" => remote.standin.data_api_sessions(),
        _ => remote.standin.wire_sessions(),
    };
    assert!(served > 0, "the stand-in served no {engine} session");
    assert_same(&local, &remote, "after a full load");
    after_full(&remote);

    // A late file dated before the others and a day that repeats plays and changes a level.
    let mut late = String::new();
    let mut day = String::new();
    let first_log = first_log_lines(local_sources.path(), 6);
    for (i, line) in first_log.iter().enumerate() {
        let mut event: serde_json::Value = serde_json::from_str(line).unwrap();
        if i % 2 == 0 {
            // The same play again (a duplicate) with another level.
            event["level"] = serde_json::json!(if event["level"] == "free" {
                "paid"
            } else {
                "free"
            });
            day.push_str(&event.to_string());
        } else {
            event["ts"] = serde_json::json!(event["ts"].as_i64().unwrap() - 86_400_000 * 40);
            event["itemInSession"] = serde_json::json!(900 + i);
            late.push_str(&event.to_string());
        }
        if i % 2 == 0 {
            day.push('\n');
        } else {
            late.push('\n');
        }
    }
    for (key, text) in [
        ("log_data/late/2018-09-01-events.json", &late),
        ("log_data/late/2018-12-01-events.json", &day),
    ] {
        remote.put(key, text);
        let path = local_sources.path().join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    local_run(&local, "etl", etl);
    let out = remote.run("etl", &[&["-v"], etl].concat());
    assert!(
        out.contains("2 new"),
        "the second run did not load the two new files incrementally:\n{out}"
    );
    assert_same(&local, &remote, "after an incremental day");
}

/// The first `n` lines of the first log file (by path) that holds at least `n` NextSong plays.
fn first_log_lines(sources: &Path, n: usize) -> Vec<String> {
    let mut files: Vec<_> = walk(&sources.join("log_data"));
    files.sort();
    for file in files {
        let plays: Vec<String> = std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .filter(|l| l.contains("\"NextSong\"") && !l.contains("\"userId\":\"\""))
            .take(n)
            .map(str::to_string)
            .collect();
        if plays.len() == n {
            return plays;
        }
    }
    panic!("no log file with {n} plays");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Generated sources plus the contract's edge cases (a title that differs by a trailing blank,
/// durations 0.01 s apart, duplicate song records naming other artists, levels that are not
/// exactly free or paid, ISO weeks across a new year, a title longer than its column, tie-breaks
/// of a user's latest event) and a file repeating plays of another.
fn edge_cases() -> tempfile::TempDir {
    let dir = common::generated(60, 600, 11);
    common::semantics_sources(dir.path());
    // Keys that differ only by a trailing blank are two songs and two artists on every engine
    // (Redshift's comparisons would merge them), each played; and a title longer than its
    // column by blanks only, which Redshift's COPY would cut and the local loader rejects.
    const NOV_20: i64 = 1_542_715_200_000;
    let song = |id: &str, artist_id: &str, artist: &str, title: &str| {
        serde_json::json!({
            "num_songs": 1, "artist_id": artist_id, "artist_latitude": null,
            "artist_longitude": null, "artist_location": "Somewhere", "artist_name": artist,
            "song_id": id, "title": title, "duration": 200.0, "year": 2001,
        })
        .to_string()
    };
    for (name, text) in [
        ("x1.json", song("SOX", "ARX", "Ex", "Blank One")),
        ("x2.json", song("SOX ", "ARX ", "Ex Two", "Blank Two")),
    ] {
        std::fs::write(dir.path().join("song_data").join(name), text).unwrap();
    }
    // A song object over several lines with a year that is not a number: COPY names the
    // line it ends on.
    std::fs::write(
        dir.path().join("song_data/pretty.json"),
        "{\n  \"num_songs\": 1,\n  \"artist_id\": \"ARP\", \"song_id\": \"SOP\",\n  \
         \"title\": \"Pretty\", \"duration\": 1.0,\n  \"year\": \"soon\"\n}\n",
    )
    .unwrap();
    let padded_title = format!("{}{}", "y".repeat(510), " ".repeat(5));
    let plays: Vec<String> = [
        (1, "Blank One", "Ex"),
        (2, "Blank Two", "Ex Two"),
        (3, "Blank Two", "Ex Two"),
        (4, padded_title.as_str(), "Ex"),
    ]
    .into_iter()
    .map(|(item, title, artist)| {
        let ts = NOV_20 + 1000 * (i64::from(item) - 1);
        common::event(7, 70, item, "free", title, artist, 200.0, ts)
    })
    .collect();
    std::fs::write(
        dir.path().join("log_data/blanks.json"),
        plays.join("\n") + "\n",
    )
    .unwrap();
    let first = first_log_lines(dir.path(), 10);
    std::fs::write(
        dir.path().join("log_data/zz-repeats.json"),
        first.join("\n") + "\n",
    )
    .unwrap();
    dir
}

/// The pretty-printed song of [`edge_cases`] is rejected naming the line its record ends on.
fn multi_line_reject_named(remote: &Remote) {
    let rejects = remote.rows("load_errors");
    assert!(
        rejects.iter().any(|r| r.contains("pretty.json")
            && r.contains("Int(6)")
            && r.contains("record ending at line 6: year")),
        "{rejects:#?}"
    );
}

#[test]
fn the_udacity_sample_through_the_wire_engine_gives_duckdbs_warehouse() {
    if let Some(sample) = common::udacity_sample() {
        full_then_incremental(&sample, "redshift", 0, &[], &|_| {});
    }
}

#[test]
fn the_udacity_sample_through_the_data_api_gives_duckdbs_warehouse() {
    if let Some(sample) = common::udacity_sample() {
        full_then_incremental(&sample, "redshift-data", 0, &[], &|_| {});
    }
}

#[test]
fn edge_cases_through_the_wire_engine_give_duckdbs_warehouse() {
    let sources = edge_cases();
    full_then_incremental(
        sources.path(),
        "redshift",
        10,
        &["--no-checks"],
        &multi_line_reject_named,
    );
}

#[test]
fn edge_cases_through_the_data_api_give_duckdbs_warehouse() {
    let sources = edge_cases();
    full_then_incremental(
        sources.path(),
        "redshift-data",
        10,
        &["--no-checks"],
        &multi_line_reject_named,
    );
}

/// The Data API keeps a session for SessionKeepAliveSeconds after its last statement finishes
/// (https://docs.aws.amazon.com/redshift-data/latest/APIReference/API_ExecuteStatement.html),
/// and the stand-in ends it then, with its transaction. With a window of 1 s, a run that calls
/// `keep_alive` between silent steps (as etl does around its S3 work) keeps its transaction and
/// its temporary table through 2.4 s of silence; one that does not loses the session, and its
/// next statement fails saying so instead of running outside the transaction.
#[test]
fn a_data_api_session_outlives_silent_work_with_keep_alives_and_lapses_without() {
    use sparkify::warehouse::{Polling, RedshiftDataWarehouse, Target, Warehouse};
    use std::time::Duration;
    let root = tempfile::tempdir().unwrap();
    let schema = format!("standin_keepalive_{}", std::process::id());
    let Some(standin) = StandIn::start(root.path(), &schema) else {
        return;
    };
    sparkify::tls::install_crypto_provider();
    let open = || {
        let config = aws_sdk_redshiftdata::Config::builder()
            .behavior_version(aws_sdk_redshiftdata::config::BehaviorVersion::latest())
            .region(aws_sdk_redshiftdata::config::Region::new(
                redshift_standin::REGION,
            ))
            .endpoint_url(&standin.data_api)
            .credentials_provider(aws_sdk_redshiftdata::config::Credentials::new(
                ACCESS_KEY, SECRET_KEY, None, None, "test",
            ))
            .build();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        RedshiftDataWarehouse::with_client(
            runtime,
            aws_sdk_redshiftdata::Client::from_conf(config),
            Target::Workgroup("sparkify-standin".into()),
            "test".into(),
            Polling {
                first: Duration::from_millis(5),
                max: Duration::from_millis(50),
                timeout: Duration::from_secs(60),
                session_keep_alive: Duration::from_secs(1),
            },
        )
    };

    let mut kept = open();
    kept.begin().unwrap();
    kept.execute("CREATE TEMP TABLE held (n INTEGER)").unwrap();
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(400));
        kept.keep_alive().unwrap();
    }
    let rows = kept.query("SELECT COUNT(*) FROM held").unwrap();
    assert_eq!(rows.single_int(), Some(0), "the temporary table was lost");
    kept.commit().unwrap();

    let mut lapsed = open();
    lapsed.begin().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let err = format!("{:#}", lapsed.query("SELECT 1").unwrap_err());
    assert!(err.contains("not available"), "{err}");
    assert_eq!(standin.data_api_sessions(), 2);
}
