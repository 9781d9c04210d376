//! S3 sources against a real S3-compatible server (s3s-fs, in process, on loopback): listing
//! across pages, concurrent fetches, retries of a failing request, a key that vanishes between
//! list and get, a missing bucket, and the whole pipeline reading its sources from a bucket.

mod common;
#[path = "common/s3_server.rs"]
mod s3_server;

use std::path::Path;

use common::{Workspace, STAR_AND_STAGING};
use predicates::prelude::*;
use s3_server::{Server, ACCESS_KEY, SECRET_KEY};
use sparkify::config::S3Config;
use sparkify::s3::S3Store;
use sparkify::source::is_json_name;

/// The environment of a process with no AWS credentials anywhere: requests go unsigned.
const NO_CREDENTIALS: &[(&str, &str)] = &[
    ("AWS_EC2_METADATA_DISABLED", "true"),
    ("AWS_CONFIG_FILE", "/nonexistent/aws-config"),
    (
        "AWS_SHARED_CREDENTIALS_FILE",
        "/nonexistent/aws-credentials",
    ),
];

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn s3_store_pages_retries_and_reports_vanished_keys() {
    // This test alone changes the process environment: no credentials, so unsigned requests.
    for (name, value) in NO_CREDENTIALS {
        std::env::set_var(name, value);
    }
    for name in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
    ] {
        std::env::remove_var(name);
    }
    let root = tempfile::tempdir().unwrap();
    let bucket = root.path().join("bucket");
    for i in 0..1500 {
        write(&bucket.join(format!("many/{:02}/{i:04}.json", i % 7)), "{}");
    }
    write(&bucket.join("many/readme.txt"), "not a source");
    write(&bucket.join("flaky/a.json"), "{\"a\": 1}");
    write(&bucket.join("slow/a.json"), "{\"b\": 2}");
    write(&bucket.join("vanish/keep.json"), "{}");
    write(&bucket.join("vanish/gone.json"), "{}");
    let server = Server::start(root.path(), false);
    let store = S3Store::connect(&S3Config {
        region: "us-east-1".into(),
        endpoint: Some(server.endpoint.clone()),
        attempt_timeout_seconds: 1,
        ..S3Config::default()
    })
    .unwrap();
    assert!(store.anonymous);
    let found = indicatif::ProgressBar::hidden();

    // More than 1000 keys: several pages, every .json key once, in key order.
    let many = store
        .list("bucket", "many/", is_json_name, "[S3] LOG_DATA", &found)
        .unwrap();
    assert_eq!(many.len(), 1500);
    assert!(many.windows(2).all(|w| w[0].key < w[1].key));
    assert!(*server.store.lists.lock().unwrap() >= 2, "one page only");
    assert_eq!(found.position(), 1500);
    let keys: Vec<&str> = many.iter().map(|o| o.key.as_str()).collect();
    let fetched = store.get_many("bucket", &keys);
    assert!(fetched.iter().all(|f| f.as_deref() == Ok(b"{}".as_slice())));

    // A failing request is retried.
    assert_eq!(
        store.get("bucket", "flaky/a.json").unwrap().as_ref(),
        b"{\"a\": 1}"
    );
    assert_eq!(server.gets("flaky/a.json"), 2);
    // So is one that hangs past the attempt timeout.
    let start = std::time::Instant::now();
    assert_eq!(
        store.get("bucket", "slow/a.json").unwrap().as_ref(),
        b"{\"b\": 2}"
    );
    assert_eq!(server.gets("slow/a.json"), 2);
    assert!(
        start.elapsed() < std::time::Duration::from_secs(4),
        "waited for the hung attempt"
    );

    // A key deleted between list and get is a per-file error, not a failed run.
    let listed = store
        .list("bucket", "vanish/", is_json_name, "[S3] LOG_DATA", &found)
        .unwrap();
    std::fs::remove_file(bucket.join("vanish/gone.json")).unwrap();
    let keys: Vec<&str> = listed.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["vanish/gone.json", "vanish/keep.json"]);
    let fetched = store.get_many("bucket", &keys);
    let err = fetched[0].as_ref().unwrap_err();
    assert!(err.contains("deleted after it was listed"), "{err}");
    assert!(fetched[1].is_ok());

    // A missing bucket names the setting and the cause.
    let err = store
        .list(
            "no-such-bucket",
            "x/",
            is_json_name,
            "[S3] SONG_DATA",
            &found,
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("[S3] SONG_DATA = s3://no-such-bucket/x/"),
        "{err}"
    );
    assert!(err.contains("does not exist"), "{err}");
}

/// A workspace whose sources are `[S3]` URIs in `bucket` on `server` (no `[LOCAL]`).
fn s3_workspace(server: &Server, bucket: &str) -> Workspace {
    let ws = Workspace {
        dir: tempfile::tempdir().unwrap(),
    };
    std::fs::write(
        ws.config(),
        format!(
            "[CLUSTER]\nHOST=\n\
             [S3]\nLOG_DATA=s3://{bucket}/log_data\nSONG_DATA=s3://{bucket}/song_data\n\
             LOG_JSONPATH=s3://{bucket}/log_json_path.json\nREGION=us-east-1\nENDPOINT={}\n\
             [WAREHOUSE]\nDUCKDB_PATH=warehouse.duckdb\nMAX_ERRORS=10\n",
            server.endpoint
        ),
    )
    .unwrap();
    ws
}

/// Runs a binary of `ws` with signed requests (the test keys in the environment), in a shell
/// set up for another S3 (LocalStack's variables, pointing at a closed port): the config's own
/// `[S3] ENDPOINT` must win over them.
fn signed(ws: &Workspace, binary: &str) -> assert_cmd::Command {
    let mut cmd = ws.cmd(binary);
    cmd.envs(NO_CREDENTIALS.iter().copied())
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
        .env_remove("AWS_PROFILE");
    cmd
}

#[test]
fn etl_reads_its_sources_from_s3_as_from_disk() {
    let root = tempfile::tempdir().unwrap();
    let bucket = root.path().join("sparkify");
    sparkify::gen_data::generate(&sparkify::gen_data::GenOptions {
        songs: 150,
        events: 2000,
        days: 30,
        seed: 7,
        out: bucket.clone(),
        force: true,
    })
    .unwrap();
    // One bad line and one unreadable object (the key fails once, then succeeds).
    write(&bucket.join("log_data/zz/bad.json"), "not json\n");
    write(&bucket.join("log_data/zz/flaky.json"), "");
    let server = Server::start(root.path(), true);

    let ws = s3_workspace(&server, "sparkify");
    signed(&ws, "etl")
        .args(["--dry-run"])
        .assert()
        .success()
        .stdout(predicate::str::contains("s3://sparkify/log_data"));
    signed(&ws, "create_tables").assert().success();
    let out = signed(&ws, "etl").arg("-vv").assert().success();
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.get_output().stdout),
        String::from_utf8_lossy(&out.get_output().stderr)
    );
    assert!(!output.contains(SECRET_KEY), "the secret key was shown");
    assert_eq!(server.gets("log_data/zz/flaky.json"), 2, "retried once");

    // The same files from disk give the same warehouse.
    let local = Workspace::new(&bucket, "MAX_ERRORS=10");
    local.create_and_load();
    for table in STAR_AND_STAGING {
        let mut from_s3 = ws.dump(table);
        let mut from_disk = local.dump(table);
        if table == "load_errors" {
            // The file names differ (s3://sparkify/... against a path); the rest must not.
            let strip = |rows: &mut Vec<String>| {
                for row in rows.iter_mut() {
                    *row = row
                        .replace("s3://sparkify/", "")
                        .replace(&format!("{}/", bucket.display()), "");
                }
            };
            strip(&mut from_s3);
            strip(&mut from_disk);
        }
        assert!(from_s3 == from_disk, "{table} differs between S3 and disk");
    }
    assert_eq!(ws.count("SELECT COUNT(*) FROM load_errors"), 1);

    // Wrong keys: a clear error, no secret.
    let out = ws
        .cmd("etl")
        .envs(NO_CREDENTIALS.iter().copied())
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", "wrong-sentinel-secret")
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("[S3] LOG_JSONPATH"), "{stderr}");
    assert!(!stderr.contains("wrong-sentinel-secret"), "{stderr}");

    // A bucket that does not exist.
    let missing = s3_workspace(&server, "no-such-bucket");
    signed(&missing, "etl")
        .args(["--dry-run"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("s3://no-such-bucket/"));
}

#[test]
fn a_prefix_reads_only_its_own_json_objects_not_siblings_markers_or_the_jsonpaths_file() {
    let root = tempfile::tempdir().unwrap();
    let clean = tempfile::tempdir().unwrap();
    common::bucket_with_more_than_data(&root.path().join("sparkify"), clean.path());
    let server = Server::start(root.path(), false);
    let ws = s3_workspace(&server, "sparkify");
    let config = std::fs::read_to_string(ws.config())
        .unwrap()
        .replace("MAX_ERRORS=10", "MAX_ERRORS=0")
        .replace(
            "LOG_JSONPATH=s3://sparkify/log_json_path.json",
            "LOG_JSONPATH=s3://sparkify/log_data/log_json_path.json",
        );
    std::fs::write(ws.config(), config).unwrap();
    let unsigned = |binary: &str| {
        let mut cmd = ws.cmd(binary);
        cmd.envs(NO_CREDENTIALS.iter().copied())
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_ENDPOINT_URL");
        cmd
    };
    unsigned("create_tables").assert().success();
    unsigned("etl").assert().success();

    let local = Workspace::new(clean.path(), "");
    local.create_and_load();
    for table in STAR_AND_STAGING {
        assert!(
            ws.dump(table) == local.dump(table),
            "{table} differs from a load of the data alone"
        );
    }
    assert_eq!(ws.count("SELECT COUNT(*) FROM load_errors"), 0);
}

#[test]
fn an_object_that_keeps_failing_fails_the_run_unless_skipped() {
    let root = tempfile::tempdir().unwrap();
    let bucket = root.path().join("sparkify");
    sparkify::gen_data::generate(&sparkify::gen_data::GenOptions {
        songs: 20,
        events: 200,
        days: 3,
        seed: 5,
        out: bucket.clone(),
        force: true,
    })
    .unwrap();
    write(&bucket.join("log_data/zz/broken.json"), "{}\n");
    let server = Server::start(root.path(), true);
    let ws = s3_workspace(&server, "sparkify");
    signed(&ws, "create_tables").assert().success();
    signed(&ws, "etl")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "cannot read s3://sparkify/log_data/zz/broken.json",
        ))
        .stderr(predicate::str::contains("--skip-unreadable-files"));
    assert!(server.gets("log_data/zz/broken.json") >= 2, "not retried");
    assert_eq!(ws.count("SELECT COUNT(*) FROM staging_events"), 0);
    signed(&ws, "etl")
        .arg("--skip-unreadable-files")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "s3://sparkify/log_data/zz/broken.json",
        ));
    assert_eq!(
        ws.count(
            "SELECT COUNT(*) FROM load_errors WHERE line IS NULL \
             AND reason LIKE 'unreadable file: %' AND file LIKE '%broken.json'"
        ),
        1
    );
    assert!(ws.count("SELECT COUNT(*) FROM staging_events") > 100);
}
