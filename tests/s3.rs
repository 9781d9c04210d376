//! S3 sources against a real S3-compatible server (s3s-fs, in process, on loopback): listing
//! across pages, concurrent fetches, retries of a failing request, a key that vanishes between
//! list and get, a missing bucket, and the whole pipeline reading its sources from a bucket.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use common::{Workspace, STAR_AND_STAGING};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use predicates::prelude::*;
use s3s::dto::{GetObjectInput, GetObjectOutput, ListObjectsV2Input, ListObjectsV2Output};
use s3s::{s3_error, S3Request, S3Response, S3Result, S3};
use sparkify::config::S3Config;
use sparkify::s3::S3Store;

/// s3s-fs with faults: the first GET of any key containing `flaky` fails with a 500, as S3
/// does now and then, and the first GET of a key containing `slow` hangs for 5 s. Counts
/// requests so tests can see retries and pages.
struct FaultyFs {
    fs: s3s_fs::FileSystem,
    gets: Mutex<HashMap<String, u32>>,
    lists: Mutex<u32>,
}

#[async_trait::async_trait]
impl S3 for FaultyFs {
    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        *self.lists.lock().unwrap() += 1;
        self.fs.list_objects_v2(req).await
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let key = req.input.key.clone();
        let attempt = {
            let mut gets = self.gets.lock().unwrap();
            let count = gets.entry(key.clone()).or_default();
            *count += 1;
            *count
        };
        if key.contains("flaky") && attempt == 1 {
            return Err(s3_error!(InternalError, "injected failure"));
        }
        if key.contains("slow") && attempt == 1 {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        }
        self.fs.get_object(req).await
    }
}

/// A running server over the directory `root` (each subdirectory a bucket).
struct Server {
    endpoint: String,
    store: Arc<FaultyFs>,
    _runtime: tokio::runtime::Runtime,
}

const ACCESS_KEY: &str = "AKIDSPARKIFYTEST";
const SECRET_KEY: &str = "sentinel-secret-key-123";

impl Server {
    /// Starts the server; with `auth` it accepts only requests signed with the test keys.
    fn start(root: &Path, auth: bool) -> Server {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let store = Arc::new(FaultyFs {
            fs: s3s_fs::FileSystem::new(root).unwrap(),
            gets: Mutex::default(),
            lists: Mutex::default(),
        });
        let mut builder = s3s::service::S3ServiceBuilder::new(SharedFs(store.clone()));
        if auth {
            builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        }
        let service = builder.build();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let address: SocketAddr = listener.local_addr().unwrap();
        runtime.spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                // Without it, delayed ACKs stall every small response by ~40 ms on loopback.
                let _ = socket.set_nodelay(true);
                let connection = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(connection);
            }
        });
        Server {
            endpoint: format!("http://{address}"),
            store,
            _runtime: runtime,
        }
    }

    fn gets(&self, key: &str) -> u32 {
        self.store
            .gets
            .lock()
            .unwrap()
            .get(key)
            .copied()
            .unwrap_or(0)
    }
}

/// The S3 trait object must be owned by the service; this shares the counters with the test.
struct SharedFs(Arc<FaultyFs>);

#[async_trait::async_trait]
impl S3 for SharedFs {
    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.0.list_objects_v2(req).await
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        self.0.get_object(req).await
    }
}

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
        .list("bucket", "many/", ".json", "[S3] LOG_DATA", &found)
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
        .list("bucket", "vanish/", ".json", "[S3] LOG_DATA", &found)
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
        .list("no-such-bucket", "x/", ".json", "[S3] SONG_DATA", &found)
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

/// Runs a binary of `ws` with signed requests (the test keys in the environment).
fn signed(ws: &Workspace, binary: &str) -> assert_cmd::Command {
    let mut cmd = ws.cmd(binary);
    cmd.envs(NO_CREDENTIALS.iter().copied())
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env_remove("AWS_ENDPOINT_URL")
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
