//! The whole cloud path on a real AWS account: `iac_create`, `create_tables`, `etl` from a small
//! prefix of the public `udacity-dend` bucket, checks against a local load of the same objects,
//! `analysis`, and `iac_delete` in a guard that runs even when a step fails.
//!
//! It costs money and needs credentials, so it runs only when asked twice:
//!
//! ```sh
//! SPARKIFY_LIVE_AWS=1 AWS_REGION=us-west-2 cargo test --release --test live_aws -- --ignored --nocapture
//! ```
//!
//! Without `SPARKIFY_LIVE_AWS=1` it prints a notice and does nothing (also under CI).

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use assert_cmd::Command;

/// Redshift Serverless's price per RPU-hour in us-west-2 when this was written (check the AWS
/// pricing page), the base capacity the test uses, and the 60-second minimum per use.
const USD_PER_RPU_HOUR: f64 = 0.36;
const RPU: f64 = 8.0;

/// A few song files and one day of events: seconds of Redshift work.
const SONG_PREFIX: &str = "s3://udacity-dend/song_data/A/A/A/";
const LOG_OBJECT: &str = "s3://udacity-dend/log_data/2018/11/2018-11-01-events.json";
const JSONPATHS: &str = "s3://udacity-dend/log_json_path.json";

struct Run {
    dir: tempfile::TempDir,
}

impl Run {
    fn config(&self) -> PathBuf {
        self.dir.path().join("dwh.cfg")
    }

    fn cmd(&self, binary: &str) -> Command {
        let mut cmd = Command::cargo_bin(binary).unwrap();
        cmd.arg("--config").arg(self.config());
        cmd
    }

    /// Runs a binary, echoes its output, and returns stdout; panics on failure.
    fn step(&self, binary: &str, args: &[&str]) -> String {
        let clock = Instant::now();
        let out = self.cmd(binary).args(args).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        eprintln!(
            "== {binary} {} ({:.0} s)\n{stdout}{}",
            args.join(" "),
            clock.elapsed().as_secs_f64(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{binary} failed");
        stdout
    }
}

/// Deletes what the run created, whatever happened before.
struct Teardown<'a>(&'a Run);

impl Drop for Teardown<'_> {
    fn drop(&mut self) {
        let out = self.0.cmd("iac_delete").arg("--yes").output();
        match out {
            Ok(out) if out.status.success() => eprintln!("== iac_delete: everything removed"),
            Ok(out) => eprintln!(
                "== iac_delete FAILED: remove the resources by hand (see the README):\n{}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("== iac_delete could not run ({e}): remove the resources by hand"),
        }
    }
}

fn write_config(path: &Path, name: &str, region: &str, password: &str, engine_lines: &str) {
    std::fs::write(
        path,
        format!(
            "[CLUSTER]\nHOST=\nDB_NAME=dev\nDB_USER=sparkify\nDB_PASSWORD={password}\nDB_PORT=5439\n\
             [IAM_ROLE]\nARN=\n\
             [S3]\nSONG_DATA={SONG_PREFIX}\nLOG_DATA={LOG_OBJECT}\nLOG_JSONPATH={JSONPATHS}\n\
             REGION=us-west-2\n\
             [WAREHOUSE]\nDUCKDB_PATH=local.duckdb\nMAX_ERRORS=100\n{engine_lines}\n\
             [DWH]\nDWH_REGION={region}\nDWH_NAMESPACE_NAME={name}-ns\n\
             DWH_WORKGROUP_NAME={name}-wg\nDWH_IAM_ROLE_NAME={name}-role\nDWH_BASE_CAPACITY=8\n"
        ),
    )
    .unwrap();
}

/// The rows per table `etl -v` printed in its summary, as `table count` pairs.
fn table_counts(summary: &str) -> Vec<(String, i64)> {
    summary
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line
                .split('|')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            match cells.as_slice() {
                [table, rows] => Some((table.to_string(), rows.replace(',', "").parse().ok()?)),
                _ => None,
            }
        })
        .collect()
}

/// What the redshift-data engine relies on and no document states (the guide documents
/// transactions only for BatchExecuteStatement): in one Data API session, a statement that
/// fails inside BEGIN is rolled back with the transaction, a TEMP table made in it is gone after
/// ROLLBACK, and the session still answers. Asked first, so that a real account that behaves
/// otherwise says so before anything is loaded.
fn data_api_session_semantics(config: &Path) {
    let config = sparkify::config::Config::load(config).unwrap();
    let mut warehouse = sparkify::warehouse::open(&config).unwrap();
    let say = |what: &str| {
        format!(
            "the Data API session did not behave as the redshift-data engine needs: {what}; \
             the engine's transactions cannot be trusted on this account"
        )
    };
    warehouse
        .execute("BEGIN")
        .unwrap_or_else(|e| panic!("{}: {e:#}", say("BEGIN failed")));
    warehouse
        .execute("CREATE TEMP TABLE sparkify_session_probe (x INT)")
        .unwrap_or_else(|e| panic!("{}: {e:#}", say("CREATE TEMP TABLE inside BEGIN failed")));
    assert!(
        warehouse
            .execute("SELECT * FROM sparkify_no_such_table_probe")
            .is_err(),
        "{}",
        say("a statement on a missing table succeeded")
    );
    warehouse
        .execute("ROLLBACK")
        .unwrap_or_else(|e| panic!("{}: {e:#}", say("ROLLBACK after a failed statement failed")));
    assert!(
        warehouse
            .query("SELECT x FROM sparkify_session_probe")
            .is_err(),
        "{}",
        say("the TEMP table made inside the rolled-back transaction is still there")
    );
    let answer = warehouse.query("SELECT 1").unwrap_or_else(|e| {
        panic!(
            "{}: {e:#}",
            say("the session stopped answering after ROLLBACK")
        )
    });
    assert_eq!(answer.rows.len(), 1, "{}", say("SELECT 1 returned no row"));
    eprintln!("== Data API session: BEGIN, TEMP table, failure, ROLLBACK behave as relied on");
}

#[test]
#[ignore = "creates Redshift Serverless resources on a real AWS account: see the module docs"]
fn the_cloud_path_on_a_real_account() {
    if std::env::var("SPARKIFY_LIVE_AWS").as_deref() != Ok("1") {
        eprintln!("NOTICE: skipping the live AWS test: set SPARKIFY_LIVE_AWS=1 (it costs money)");
        return;
    }
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-west-2".into());
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let name = format!("sparkify-live-{stamp}");
    // Upper and lower case and a digit, as Redshift requires; never printed.
    let password = format!("Live{}x{}", stamp % 100_000, stamp % 97);
    let minutes = 15.0;
    eprintln!(
        "NOTICE: the live test creates {name}-* in {region}; at {RPU} RPU and about US${USD_PER_RPU_HOUR} \
         per RPU-hour, {minutes} minutes of work cost about US${:.2}, plus storage while it exists",
        RPU * USD_PER_RPU_HOUR * minutes / 60.0
    );

    // The same objects, read by the tool itself into DuckDB: the reference.
    let local = Run {
        dir: tempfile::tempdir().unwrap(),
    };
    write_config(&local.config(), &name, &region, &password, "ENGINE=duckdb");
    local.step("create_tables", &[]);
    let expected = table_counts(&local.step("etl", &["-v"]));

    let run = Run {
        dir: tempfile::tempdir().unwrap(),
    };
    // The Data API needs no open port: no ingress rule is made.
    write_config(
        &run.config(),
        &name,
        &region,
        &password,
        "ENGINE=redshift-data",
    );
    let _teardown = Teardown(&run);
    run.step("iac_create", &["--no-ingress"]);
    data_api_session_semantics(&run.config());
    run.step("create_tables", &[]);
    let loaded = table_counts(&run.step("etl", &["-v"]));
    assert_eq!(loaded, expected, "Redshift and the local load disagree");
    assert!(
        loaded.iter().any(|(t, n)| t == "songplays" && *n > 0),
        "{loaded:?}"
    );
    let answers = run.step("analysis", &["--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&answers).unwrap();
    assert_eq!(doc["answers"].as_array().map(Vec::len), Some(13));
}
