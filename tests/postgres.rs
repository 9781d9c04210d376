//! The pipeline on a real PostgreSQL server: the same binaries, each test in a database of its
//! own. The server comes from `DATABASE_URL` (default: 127.0.0.1:5432 as postgres, trust auth).
//! Without a server these tests skip with a notice, except under `CI=true`, where they fail.

mod common;

use common::{sources_with_log_lines, udacity_sample, Workspace, BAD_LINES, STAR_AND_STAGING};
use predicates::prelude::*;
use tokio_postgres::config::Host;
use tokio_postgres::NoTls;

/// A database created for one test and dropped after it.
struct TestDatabase {
    server: tokio_postgres::Config,
    name: String,
    /// `[CLUSTER]` lines that reach it.
    cluster: String,
}

/// Runs each statement on its own (CREATE DATABASE refuses a transaction block). Returns an
/// error only when the server cannot be reached; a failing statement panics.
fn admin(
    server: &tokio_postgres::Config,
    statements: &[&str],
) -> Result<(), tokio_postgres::Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = server.connect(NoTls).await?;
        tokio::spawn(connection);
        for statement in statements {
            if let Err(e) = client.batch_execute(statement).await {
                panic!("{statement}: {e:?}");
            }
        }
        Ok(())
    })
}

impl TestDatabase {
    /// A fresh database, or `None` (with a notice) when no server answers outside CI.
    fn create(test: &str) -> Option<TestDatabase> {
        let url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=postgres".into());
        let server: tokio_postgres::Config = url.parse().expect("DATABASE_URL is a valid URL");
        let name = format!("sparkify_{test}_{}", std::process::id());
        let created = admin(
            &server,
            &[
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                &format!("CREATE DATABASE {name}"),
            ],
        );
        if let Err(e) = created {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("no PostgreSQL server at {url} ({e}), and CI=true requires one");
            }
            eprintln!("NOTICE: skipping: no PostgreSQL server at {url}: {e}");
            return None;
        }
        let host = match server.get_hosts().first() {
            Some(Host::Tcp(host)) => host.clone(),
            Some(Host::Unix(path)) => path.display().to_string(),
            None => "127.0.0.1".into(),
        };
        let port = server.get_ports().first().copied().unwrap_or(5432);
        let user = server.get_user().unwrap_or("postgres");
        let cluster = format!(
            "HOST={host}\nDB_PORT={port}\nDB_NAME={name}\nDB_USER={user}\n\
             DB_PASSWORD=sentinel-password-123"
        );
        Some(TestDatabase {
            server,
            name,
            cluster,
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = admin(
            &self.server,
            &[&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )],
        );
    }
}

#[test]
fn postgres_holds_the_same_rows_as_duckdb() {
    let Some(sample) = udacity_sample() else {
        return;
    };
    let Some(db) = TestDatabase::create("same_rows") else {
        return;
    };
    let ws = Workspace::with_cluster(&sample, &db.cluster, "ENGINE=postgres");
    let out = ws.create_and_load();
    assert!(out.contains("etl into postgres"), "{out}");
    assert!(!out.contains("sentinel-password-123"), "{out}");
    // The same config, the embedded engine chosen on the command line.
    ws.cmd("create_tables")
        .args(["--engine", "duckdb"])
        .assert()
        .success();
    ws.cmd("etl")
        .args(["--engine", "duckdb"])
        .assert()
        .success()
        .stdout(predicate::str::contains("etl into duckdb"));

    for table in STAR_AND_STAGING {
        let postgres = ws.rows(None, table);
        let duckdb = ws.rows(Some("duckdb"), table);
        assert_eq!(postgres.len(), duckdb.len(), "rows of {table}");
        assert!(
            postgres == duckdb,
            "{table} differs between PostgreSQL and DuckDB"
        );
    }
    assert_eq!(ws.rows(None, "songplays").len(), 6820);
    assert_eq!(ws.rows(None, "time").len(), 6813);

    let answers = |engine: &str| {
        let out = ws
            .cmd("analysis")
            .args(["--format", "json", "--engine", engine])
            .assert()
            .success();
        let mut doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
        doc["warehouse"] = serde_json::Value::Null;
        doc
    };
    assert_eq!(answers("postgres"), answers("duckdb"));
}

#[test]
fn postgres_records_rejects_and_rolls_back_a_failed_load() {
    let Some(db) = TestDatabase::create("rejects") else {
        return;
    };
    let sources = tempfile::tempdir().unwrap();
    sources_with_log_lines(sources.path(), BAD_LINES);
    let ws = Workspace::with_cluster(sources.path(), &db.cluster, "MAX_ERRORS=3");
    let out = ws.create_and_load();
    assert!(
        out.contains("etl into postgres"),
        "auto picks postgres for a host: {out}"
    );
    let errors = ws.rows(None, "load_errors");
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(errors
        .iter()
        .any(|e| e.contains("a JSON array, not an object")));
    let before: Vec<_> = STAR_AND_STAGING.iter().map(|t| ws.rows(None, t)).collect();

    ws.cmd("etl")
        .args(["--max-errors", "2"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("nothing was committed"));
    let after: Vec<_> = STAR_AND_STAGING.iter().map(|t| ws.rows(None, t)).collect();
    assert_eq!(
        before, after,
        "a failed load changed the PostgreSQL warehouse"
    );
}

#[test]
fn a_wrong_postgres_setting_is_a_clear_error_without_the_password() {
    let sources = tempfile::tempdir().unwrap();
    sources_with_log_lines(sources.path(), "");
    let ws = Workspace::with_cluster(
        sources.path(),
        "HOST=127.0.0.1\nDB_PORT=1\nDB_NAME=none\nDB_USER=nobody\nDB_PASSWORD=sentinel-password-123",
        "",
    );
    let out = ws
        .cmd("create_tables")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "cannot connect to PostgreSQL at nobody@127.0.0.1:1/none",
        ))
        .stderr(predicate::str::contains("[CLUSTER] HOST, DB_PORT"));
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(!stderr.contains("sentinel-password-123"), "{stderr}");
    ws.cmd("etl")
        .args(["--engine", "redshift"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("redshift engine is not available"));
}
