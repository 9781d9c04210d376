//! The pipeline on a real PostgreSQL server: the same binaries, each test in a database of its
//! own. The server comes from `DATABASE_URL` (default: 127.0.0.1:5432 as postgres, trust auth).
//! Without a server these tests skip with a notice, except under `CI=true`, where they fail.

mod common;
#[path = "common/s3_server.rs"]
mod s3_server;

use common::{
    hostile_sources, kill_etl_at, sources_with_log_lines, udacity_sample, Workspace, BAD_LINES,
    HOSTILE_REJECTS, STAR_AND_STAGING,
};
use std::time::{Duration, Instant};

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

impl TestDatabase {
    /// A new database holding what this one holds (PostgreSQL's template copy), waiting for
    /// the last binary's session on this one to end.
    fn copy(&self, test: &str) -> TestDatabase {
        let name = format!("sparkify_{test}_{}", std::process::id());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (client, connection) = self.server.connect(NoTls).await.unwrap();
            tokio::spawn(connection);
            client
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await
                .unwrap();
            let create = format!("CREATE DATABASE {name} TEMPLATE {}", self.name);
            for attempt in 0.. {
                match client.batch_execute(&create).await {
                    Ok(()) => break,
                    Err(e) if attempt < 100 && format!("{e:?}").contains("other users") => {
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                    Err(e) => panic!("{create}: {e:?}"),
                }
            }
        });
        TestDatabase {
            server: self.server.clone(),
            cluster: self.cluster.replace(&self.name, &name),
            name,
        }
    }
}

impl TestDatabase {
    /// Statements the toolkit's sessions are running in this database now.
    fn active_queries_of_sparkify(&self) -> i64 {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (client, connection) = self.server.connect(NoTls).await.unwrap();
            tokio::spawn(connection);
            client
                .query_one(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1 \
                     AND application_name LIKE 'sparkify%' AND state <> 'idle'",
                    &[&self.name],
                )
                .await
                .unwrap()
                .get(0)
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
    let before = ws.tables();

    // Unchanged files are not read again unless asked.
    ws.cmd("etl")
        .args(["--max-errors", "2", "--full-refresh"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("nothing was committed"));
    let after = ws.tables();
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
    let out = ws
        .cmd("etl")
        .args(["--engine", "redshift"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "cannot connect to Redshift at nobody@127.0.0.1:1/none (sslmode verify-full)",
        ));
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(!stderr.contains("sentinel-password-123"), "{stderr}");
}

/// The certificate of the local server (Debian's snakeoil, self-signed for `localhost`).
const SERVER_CERT: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";

/// The `[CLUSTER]` of `db` reached as `localhost` with extra lines, parsed.
fn cluster_config(db: &TestDatabase, extra: &str) -> sparkify::config::ClusterConfig {
    let cluster = db.cluster.replace("HOST=127.0.0.1", "HOST=localhost");
    let text = format!("[CLUSTER]\n{cluster}\n{extra}\n");
    sparkify::config::Config::parse(&text, "dwh.cfg".as_ref(), "/".as_ref())
        .unwrap()
        .cluster
}

/// Whether the local server offers TLS with the snakeoil certificate; else the TLS tests skip
/// with a notice (CI's server, Debian's default, does).
fn server_has_tls(db: &TestDatabase) -> bool {
    let cluster = cluster_config(db, "SSLMODE=require");
    let has = std::path::Path::new(SERVER_CERT).exists()
        && sparkify::warehouse::PostgresWarehouse::connect(&cluster).is_ok();
    if !has {
        eprintln!("NOTICE: skipping: the PostgreSQL server offers no TLS with {SERVER_CERT}");
    }
    has
}

#[test]
fn sslmodes_encrypt_and_verify_as_libpq_does() {
    use sparkify::warehouse::PostgresWarehouse;
    let Some(db) = TestDatabase::create("tls") else {
        return;
    };
    if !server_has_tls(&db) {
        return;
    }
    let encrypted = |extra: &str| {
        PostgresWarehouse::connect(&cluster_config(&db, extra))
            .map(|mut w| w.server_reports_tls().unwrap())
            .map_err(|e| format!("{e:#}"))
    };
    assert_eq!(encrypted("SSLMODE=disable"), Ok(false));
    assert_eq!(
        encrypted(""),
        Ok(true),
        "prefer is the default on this machine"
    );
    assert_eq!(encrypted("SSLMODE=require"), Ok(true));
    // require with a root certificate checks the chain, as libpq's verify-ca does: a CA that
    // did not sign the server's certificate is refused.
    let err =
        encrypted("SSLMODE=require\nSSLROOTCERT=/etc/ssl/certs/ISRG_Root_X1.pem").unwrap_err();
    assert!(
        err.contains("(sslmode verify-ca)") && err.contains("certificate"),
        "{err}"
    );
    let root = format!("SSLROOTCERT={SERVER_CERT}");
    assert_eq!(encrypted(&format!("SSLMODE=require\n{root}")), Ok(true));
    assert_eq!(encrypted(&format!("SSLMODE=verify-full\n{root}")), Ok(true));
    // The bundled public roots do not trust a self-signed certificate.
    let err = encrypted("SSLMODE=verify-full").unwrap_err();
    assert!(err.contains("set [CLUSTER] SSLROOTCERT"), "{err}");
    // verify-ca ignores the name; verify-full does not.
    let by_address = |mode: &str| {
        let mut cluster = cluster_config(&db, &format!("SSLMODE={mode}\n{root}"));
        cluster.host = "127.0.0.1".into();
        PostgresWarehouse::connect(&cluster).map_err(|e| format!("{e:#}"))
    };
    assert!(by_address("verify-ca").is_ok());
    let err = by_address("verify-full").err().unwrap();
    assert!(err.contains("certificate"), "{err}");
    assert!(!err.contains("sentinel-password-123"), "{err}");
}

/// A session the toolkit opens ends itself on the server when it sits idle inside a
/// transaction (a client stopped where the network does not show it), over TCP and over the
/// Unix socket, which the toolkit opens itself too.
#[test]
fn sessions_end_themselves_when_idle_in_a_transaction() {
    use sparkify::warehouse::{PostgresWarehouse, Warehouse};
    let Some(db) = TestDatabase::create("idle") else {
        return;
    };
    for host in ["localhost", "/var/run/postgresql"] {
        let mut cluster = cluster_config(&db, "");
        cluster.host = host.into();
        if host.starts_with('/') && !std::path::Path::new(host).exists() {
            continue;
        }
        let mut warehouse = PostgresWarehouse::connect(&cluster).unwrap();
        let shown = warehouse
            .query("SHOW idle_in_transaction_session_timeout")
            .unwrap();
        assert_eq!(shown.rows[0][0].to_string(), "15min", "{host}");
    }
}

/// The redshift engine's own code (connection with verified TLS, transactions, the shared
/// transform and analysis SQL in the Redshift dialect) run against PostgreSQL, which speaks the
/// same protocol: staging is loaded by the postgres engine, then the redshift engine transforms
/// it and must give the rows the postgres engine gave.
#[test]
fn redshift_engine_runs_its_shared_statements_on_postgres() {
    use sparkify::schema::STAR_TABLES;
    use sparkify::sql::{self, Dialect};
    use sparkify::warehouse::{RedshiftWarehouse, Warehouse};
    let Some(db) = TestDatabase::create("redshift_wire") else {
        return;
    };
    if !server_has_tls(&db) {
        return;
    }
    let sources = common::generated(150, 2000, 42);
    let ws = Workspace::with_cluster(sources.path(), &db.cluster, "ENGINE=postgres");
    ws.create_and_load();
    let expected: Vec<_> = STAR_TABLES.iter().map(|t| ws.rows(None, t.name)).collect();

    let cluster = cluster_config(&db, &format!("SSLROOTCERT={SERVER_CERT}"));
    let mut redshift = RedshiftWarehouse::connect(&cluster).unwrap();
    assert!(redshift.describe().contains("TLS verify-full"));
    assert_eq!(redshift.dialect(), Dialect::Redshift);
    let count = |w: &mut RedshiftWarehouse, table: &str| {
        w.query(&format!("SELECT COUNT(*) FROM {table}"))
            .unwrap()
            .single_int()
            .unwrap()
    };
    // A rolled-back delete leaves the rows.
    redshift.begin().unwrap();
    redshift.execute("DELETE FROM songplays").unwrap();
    assert_eq!(count(&mut redshift, "songplays"), 0);
    redshift.rollback().unwrap();
    let songplays = ws.rows(None, "songplays").len() as i64;
    assert!(songplays > 1000);
    assert_eq!(count(&mut redshift, "songplays"), songplays);
    // The Redshift transform, committed, gives the same star schema.
    redshift.begin().unwrap();
    for table in STAR_TABLES {
        redshift.execute(&sql::delete_all(table)).unwrap();
    }
    for (table, statement) in sql::transform(Dialect::Redshift) {
        redshift
            .execute(&statement)
            .unwrap_or_else(|e| panic!("{}: {e:#}", table.name));
    }
    redshift.commit().unwrap();
    let again: Vec<_> = STAR_TABLES.iter().map(|t| ws.rows(None, t.name)).collect();
    assert!(expected == again, "the Redshift transform differs");
    let answers = sparkify::analysis::run(&mut redshift, &[], 5).unwrap();
    assert_eq!(answers.len(), sql::ANALYSIS_QUERIES.len());
    // What tells the toolkit's tables from others', as Redshift is sent it.
    use sparkify::schema::{ALL_TABLES, LOADED_FILES};
    for table in ALL_TABLES {
        redshift.execute(&sql::mark_table(table)).unwrap();
    }
    let marks = redshift
        .query(&sql::table_marks(Dialect::Redshift, &ALL_TABLES))
        .unwrap();
    assert_eq!(marks.rows.len(), ALL_TABLES.len());
    assert!(marks
        .rows
        .iter()
        .all(|row| row[1].to_string().starts_with(sql::TABLE_MARK_PREFIX)));
    let columns = redshift
        .query(&sql::table_columns(&[&LOADED_FILES]))
        .unwrap();
    let names: Vec<String> = columns.rows.iter().map(|r| r[1].to_string()).collect();
    assert_eq!(names, LOADED_FILES.column_names().collect::<Vec<_>>());
    let entries = count(&mut redshift, "loaded_files");
    redshift.begin().unwrap();
    let all: Vec<(String, String)> = redshift
        .query("SELECT source, file FROM loaded_files WHERE source <> 'log_jsonpath'")
        .unwrap()
        .rows
        .iter()
        .map(|r| (r[0].to_string(), r[1].to_string()))
        .collect();
    for statement in sql::forget_ledger_entries(Dialect::Redshift, &all) {
        redshift.execute(&statement).unwrap();
    }
    assert_eq!(
        count(&mut redshift, "loaded_files"),
        1,
        "only the mapping's row is left"
    );
    redshift.rollback().unwrap();
    assert_eq!(count(&mut redshift, "loaded_files"), entries);
    let rejects = redshift.query(&sql::rejects(10)).unwrap();
    assert_eq!(rejects.columns.len(), 5);
    // A schema of its own: made, and the session's tables resolve there.
    for statement in sql::use_schema("sparkify_apart", true) {
        redshift.execute(&statement).unwrap();
    }
    assert_eq!(
        redshift.query("SELECT current_schema()").unwrap().rows[0][0].to_string(),
        "sparkify_apart"
    );
    // Redshift's COPY cannot run here; what it needs is refused clearly.
    let err = RedshiftWarehouse::connect(&cluster_config(&db, "SSLMODE=require"))
        .err()
        .unwrap();
    assert!(format!("{err:#}").contains("always encrypts and verifies"));
}

#[test]
fn comparisons_follow_the_contract_on_postgres() {
    let Some(db) = TestDatabase::create("semantics") else {
        return;
    };
    let sources = tempfile::tempdir().unwrap();
    common::semantics_sources(sources.path());
    let ws = Workspace::with_cluster(sources.path(), &db.cluster, "ENGINE=postgres\nMAX_ERRORS=1");
    common::load_semantics(&ws);
    common::assert_semantics(&ws, "postgres");
}

#[test]
fn postgres_reads_the_same_objects_of_a_prefix_as_duckdb() {
    let Some(db) = TestDatabase::create("s3_prefix") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let clean = tempfile::tempdir().unwrap();
    common::bucket_with_more_than_data(&root.path().join("sparkify"), clean.path());
    let server = s3_server::Server::start(root.path(), false);
    let ws = Workspace::with_cluster(clean.path(), &db.cluster, "ENGINE=postgres");
    // The sources from the bucket instead of [LOCAL].
    let config = std::fs::read_to_string(ws.config()).unwrap();
    let config = config[..config.find("[LOCAL]").unwrap()].to_string()
        + &config[config.find("[WAREHOUSE]").unwrap()..]
        + &format!(
            "[S3]\nLOG_DATA=s3://sparkify/log_data\nSONG_DATA=s3://sparkify/song_data\n\
             LOG_JSONPATH=s3://sparkify/log_data/log_json_path.json\nREGION=us-east-1\n\
             ENDPOINT={}\n",
            server.endpoint
        );
    std::fs::write(ws.config(), config).unwrap();
    let unsigned = |args: &[&str]| {
        ws.cmd(args[0])
            .args(&args[1..])
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/aws-credentials",
            )
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_ENDPOINT_URL")
            .assert()
            .success();
    };
    unsigned(&["create_tables"]);
    unsigned(&["etl"]);
    unsigned(&["create_tables", "--engine", "duckdb"]);
    unsigned(&["etl", "--engine", "duckdb"]);
    let local = Workspace::new(clean.path(), "");
    local.create_and_load();
    for table in STAR_AND_STAGING {
        let postgres = ws.rows(None, table);
        assert!(
            postgres == ws.rows(Some("duckdb"), table),
            "{table} differs between PostgreSQL and DuckDB"
        );
        assert!(
            postgres == local.rows(None, table),
            "{table} on PostgreSQL differs from a load of the data alone"
        );
    }
}

#[test]
fn a_host_elsewhere_is_verified_by_default() {
    let cluster = |host: &str, extra: &str| {
        let text = format!("[CLUSTER]\nHOST={host}\n{extra}\n");
        sparkify::config::Config::parse(&text, "dwh.cfg".as_ref(), "/".as_ref())
            .unwrap()
            .cluster
    };
    use sparkify::config::SslMode;
    use sparkify::warehouse::postgres_sslmode as mode;
    assert_eq!(mode(&cluster("db.example.com", "")), SslMode::VerifyFull);
    assert_eq!(mode(&cluster("10.0.0.7", "")), SslMode::VerifyFull);
    for local in ["127.0.0.1", "localhost", "::1", "/var/run/postgresql"] {
        assert_eq!(mode(&cluster(local, "")), SslMode::Prefer, "{local}");
    }
    assert_eq!(
        mode(&cluster("db.example.com", "SSLMODE=prefer")),
        SslMode::Prefer
    );
    assert_eq!(
        mode(&cluster(
            "db.example.com",
            "SSLMODE=require\nSSLROOTCERT=ca.pem"
        )),
        SslMode::VerifyCa
    );
    // Through the binary: the refusal says which mode was used.
    let sources = tempfile::tempdir().unwrap();
    sources_with_log_lines(sources.path(), "");
    let ws = Workspace::with_cluster(sources.path(), "HOST=db.invalid\nDB_PORT=5432", "");
    ws.cmd("create_tables")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("(sslmode verify-full)"));
}

#[test]
fn hostile_input_gives_the_same_rejects_on_postgres_as_on_duckdb() {
    let Some(db) = TestDatabase::create("hostile") else {
        return;
    };
    let sources = tempfile::tempdir().unwrap();
    hostile_sources(sources.path());
    std::os::unix::fs::symlink(
        sources.path().join("nowhere"),
        sources.path().join("log_data/2018/11/broken.json"),
    )
    .unwrap();
    let ws = Workspace::with_cluster(sources.path(), &db.cluster, "MAX_ERRORS=5");
    ws.cmd("create_tables").assert().success();
    ws.cmd("etl")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("broken.json"))
        .stderr(predicate::str::contains("--skip-unreadable-files"));
    ws.cmd("etl")
        .arg("--skip-unreadable-files")
        .assert()
        .success()
        .stdout(predicate::str::contains("1 file could not be read"));
    let postgres = ws.rows(None, "load_errors");
    assert_eq!(postgres.len(), HOSTILE_REJECTS.len() + 1, "{postgres:#?}");
    assert!(postgres.iter().any(|r| r.contains("unreadable file: ")));
    ws.cmd("create_tables")
        .args(["--engine", "duckdb"])
        .assert()
        .success();
    ws.cmd("etl")
        .args(["--engine", "duckdb", "--skip-unreadable-files"])
        .assert()
        .success();
    for table in ["load_errors", "staging_events", "staging_songs"] {
        assert_eq!(
            ws.rows(None, table),
            ws.rows(Some("duckdb"), table),
            "{table} differs between PostgreSQL and DuckDB"
        );
    }
}

#[test]
fn one_load_at_a_time_on_postgres() {
    use sparkify::warehouse::{PostgresWarehouse, Warehouse};
    let Some(db) = TestDatabase::create("lock") else {
        return;
    };
    let sources = tempfile::tempdir().unwrap();
    sources_with_log_lines(sources.path(), "");
    let ws = Workspace::with_cluster(sources.path(), &db.cluster, "");
    ws.cmd("create_tables").assert().success();
    // This test's own connection holds the load lock, as a running etl does.
    let config = sparkify::config::Config::load(&ws.config()).unwrap();
    let mut holder = PostgresWarehouse::connect(&config.cluster).unwrap();
    holder.begin().unwrap();
    holder.lock_for_load(std::time::Duration::ZERO).unwrap();
    let started = std::time::Instant::now();
    ws.cmd("etl")
        .args(["--lock-timeout", "2"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "another load holds the warehouse (postgres ",
        ))
        .stderr(predicate::str::contains("wait for it to finish"))
        // Said after a second, and named: this test's session, as the toolkit names its own.
        .stderr(predicate::str::contains(
            "waiting for a load of this toolkit (sparkify ",
        ))
        .stderr(predicate::str::contains(
            "the load's lock is held by a load of this toolkit",
        ));
    assert!(started.elapsed() >= std::time::Duration::from_secs(2));
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        holder.rollback().unwrap();
    });
    let started = std::time::Instant::now();
    ws.cmd("etl")
        .args(["--lock-timeout", "20"])
        .assert()
        .success();
    assert!(started.elapsed() >= std::time::Duration::from_millis(1000));
    release.join().unwrap();
}

/// A warehouse on `db` loaded with a small sample, its tables, and its config then pointed at
/// 100k generated events (from `seed`), so that the next etl runs long enough to be stopped
/// while loading or transforming. The sources are returned to live as long as the test.
fn loaded_then_pointed_at_a_large_load(
    db: &TestDatabase,
    seed: u64,
) -> (Workspace, Vec<Vec<String>>, [tempfile::TempDir; 2]) {
    let small = tempfile::tempdir().unwrap();
    sources_with_log_lines(small.path(), "");
    let big = common::generated(3000, 100_000, seed);
    let ws = Workspace::with_cluster(small.path(), &db.cluster, "");
    ws.create_and_load();
    let before = ws.tables();
    ws.write_config_with_cluster(big.path(), &format!("{}\n", db.cluster), "");
    (ws, before, [small, big])
}

#[test]
fn an_interrupted_postgres_run_cancels_its_statement_and_exits_130_having_committed_nothing() {
    let Some(db) = TestDatabase::create("interrupted") else {
        return;
    };
    let (ws, before, _sources) = loaded_then_pointed_at_a_large_load(&db, 5);
    for (signal, marker) in [("INT", "transforming"), ("TERM", "loading")] {
        let run = common::interrupt_etl_at(&ws.config(), &["--full-refresh"], marker, signal)
            .unwrap_or_else(|| panic!("etl ended before it reached {marker}"));
        assert_eq!(
            run.code,
            Some(common::interrupted_exit_code(signal)),
            "SIG{signal} at {marker}: {}",
            run.stderr
        );
        assert!(
            run.stderr
                .contains("interrupted: nothing of this run was committed"),
            "{}",
            run.stderr
        );
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        assert!(
            run.exit_after_signal < Duration::from_secs(10),
            "took {:?} to stop",
            run.exit_after_signal
        );
        // The server was asked to stop: nothing of the run still runs there, at once.
        assert_eq!(
            db.active_queries_of_sparkify(),
            0,
            "SIG{signal} at {marker}"
        );
        let started = Instant::now();
        ws.cmd("check").assert().success();
        assert!(started.elapsed() < Duration::from_secs(5));
        let after = ws.tables();
        assert!(
            before == after,
            "SIG{signal} at {marker} changed the warehouse"
        );
    }
    let started = Instant::now();
    ws.cmd("create_tables").arg("--yes").assert().success();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "create_tables waited {:?}",
        started.elapsed()
    );
}

#[test]
fn a_killed_postgres_run_leaves_the_warehouse_as_it_was() {
    let Some(db) = TestDatabase::create("killed") else {
        return;
    };
    let (ws, before, _sources) = loaded_then_pointed_at_a_large_load(&db, 3);
    for marker in ["loading", "transforming"] {
        // The server drops a killed client's transaction (at once when it is idle, within
        // about a second of its query otherwise): the next run waits for that.
        assert!(
            kill_etl_at(&ws.config(), &["--lock-timeout", "30"], marker),
            "etl ended before it could be killed at {marker}"
        );
        let after = ws.tables();
        assert!(
            before == after,
            "a run killed at {marker} changed the warehouse"
        );
    }
    ws.cmd("etl")
        .args(["--lock-timeout", "30"])
        .assert()
        .success();
}

/// A server that speaks just enough of PostgreSQL's protocol to offer SCRAM-SHA-256 *without*
/// channel binding over TLS, as a relay holding its own certificate would (it cannot offer
/// SCRAM-SHA-256-PLUS bound to the real server's certificate). Returns its port and whether
/// a client went on to send a SASL response (the first step of the password exchange).
fn scram_without_binding_server() -> (u16, std::thread::JoinHandle<bool>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use std::io::{Read, Write};
    let certs: Vec<CertificateDer> = CertificateDer::pem_file_iter(SERVER_CERT)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file("/etc/ssl/private/ssl-cert-snakeoil.key").unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = std::sync::Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut ssl_request = [0u8; 8];
        tcp.read_exact(&mut ssl_request).unwrap();
        assert_eq!(
            &ssl_request[4..],
            &80877103u32.to_be_bytes(),
            "an SSLRequest"
        );
        tcp.write_all(b"S").unwrap();
        let connection = rustls::ServerConnection::new(tls).unwrap();
        let mut stream = rustls::StreamOwned::new(connection, tcp);
        let mut length = [0u8; 4];
        stream.read_exact(&mut length).unwrap();
        let mut startup = vec![0u8; u32::from_be_bytes(length) as usize - 4];
        stream.read_exact(&mut startup).unwrap();
        // AuthenticationSASL offering SCRAM-SHA-256 only.
        let mechanisms = b"SCRAM-SHA-256\0\0";
        let mut message = vec![b'R'];
        message.extend_from_slice(&((4 + 4 + mechanisms.len()) as u32).to_be_bytes());
        message.extend_from_slice(&10u32.to_be_bytes());
        message.extend_from_slice(mechanisms);
        stream.write_all(&message).unwrap();
        stream.flush().unwrap();
        let mut kind = [0u8; 1];
        matches!(stream.read(&mut kind), Ok(1) if kind[0] == b'p')
    });
    (port, server)
}

#[test]
fn scram_over_tls_without_channel_binding_is_refused() {
    if !std::path::Path::new(SERVER_CERT).exists() {
        eprintln!("NOTICE: skipping: no {SERVER_CERT} to serve TLS with");
        return;
    }
    sparkify::tls::install_crypto_provider();
    let (port, server) = scram_without_binding_server();
    let text = format!(
        "[CLUSTER]\nHOST=127.0.0.1\nDB_PORT={port}\nDB_NAME=d\nDB_USER=u\n\
         DB_PASSWORD=sentinel-password-123\nSSLMODE=require\n"
    );
    let cluster = sparkify::config::Config::parse(&text, "dwh.cfg".as_ref(), "/".as_ref())
        .unwrap()
        .cluster;
    let err = sparkify::warehouse::PostgresWarehouse::connect(&cluster)
        .err()
        .expect("a SCRAM exchange without channel binding over TLS was accepted");
    let err = format!("{err:#}");
    assert!(err.contains("without channel binding"), "{err}");
    assert!(!err.contains("sentinel-password-123"), "{err}");
    assert!(
        !server.join().unwrap(),
        "the client began the password exchange"
    );
}

/// Writes one log file of `lines` events (none a play, so the transform is quick) and a bad
/// line at the end; returns its size.
fn one_big_log_file(sources: &std::path::Path, lines: u64) -> u64 {
    use std::io::Write;
    let log = sources.join("log_data/2018/11/2018-11-01-events.json");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&log).unwrap());
    for i in 0..lines {
        writeln!(
            out,
            r#"{{"artist":null,"auth":"Logged In","firstName":"F","gender":"F","itemInSession":{item},"lastName":"L","length":null,"level":"free","location":"Somewhere, Some State","method":"GET","page":"Home","registration":1540991795796.0,"sessionId":{session},"song":null,"status":200,"ts":{ts},"userAgent":"Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/36.0.1985.143 Safari/537.36 and some more text to make the line as long as the app's","userId":"{user}"}}"#,
            item = i % 100,
            session = i / 100,
            ts = 1541000000000u64 + i * 1000,
            user = i % 97 + 1,
        )
        .unwrap();
    }
    writeln!(out, "not json").unwrap();
    out.flush().unwrap();
    std::fs::metadata(&log).unwrap().len()
}

/// The "peak memory: N MiB" line of an etl summary.
fn peak_mib(summary: &str) -> u64 {
    summary
        .lines()
        .find_map(|l| l.strip_prefix("peak memory: "))
        .and_then(|l| l.strip_suffix(" MiB"))
        .unwrap_or_else(|| panic!("no peak memory in {summary}"))
        .parse()
        .unwrap()
}

/// On PostgreSQL the rows go to the server, so the client's memory is the loader's own: it
/// must not grow with the size of a log file (read in pieces cut at line ends, a 16 MiB chunk
/// shared among the parse workers), and
/// a reject's line number must count the lines of the earlier pieces.
#[test]
fn a_log_file_larger_than_a_chunk_streams_in_bounded_memory() {
    let Some(db) = TestDatabase::create("big_file") else {
        return;
    };
    let sources = tempfile::tempdir().unwrap();
    sources_with_log_lines(sources.path(), "");
    let ws = Workspace::with_cluster(sources.path(), &db.cluster, "MAX_ERRORS=1");
    ws.cmd("create_tables").assert().success();
    let mut peaks = Vec::new();
    for lines in [200_000u64, 800_000] {
        let size = one_big_log_file(sources.path(), lines);
        let out = ws.cmd("etl").assert().success();
        let summary = String::from_utf8(out.get_output().stdout.clone()).unwrap();
        let rows = ws.rows(None, "load_errors");
        assert_eq!(rows.len(), 1);
        assert!(
            rows[0].contains(&format!("Int({})", lines + 1)),
            "the reject's line counts the lines of earlier pieces: {rows:?}"
        );
        peaks.push((size, peak_mib(&summary)));
    }
    let [(small_size, small_peak), (large_size, large_peak)] = peaks[..] else {
        unreachable!()
    };
    assert!(
        large_size > 3 * small_size && large_size > 300_000_000,
        "{large_size}"
    );
    // Reading the file whole would add the 287 MB more it holds (and its rows) to the peak.
    // Streamed, the loader holds a few 16 MiB pieces with their typed rows (read, parsed
    // ahead, being appended); how many are in flight at the peak depends on timing (seen: 127
    // MiB and 193 MiB for the two files on a busy machine), so two pieces' worth of slack.
    assert!(
        large_peak < small_peak + 128,
        "peak memory grew with the file: {small_peak} MiB for {small_size} bytes, \
         {large_peak} MiB for {large_size} bytes"
    );
}

/// The transform's plans on PostgreSQL, as etl prepares them (statistics of staging, no nested
/// loops): hash or merge joins only. A nested loop over the plays is what made a Udacity-size
/// load take 14 s.
#[test]
fn the_transform_plans_no_nested_loop_on_postgres() {
    use sparkify::sql::{self, Dialect};
    use sparkify::warehouse::{PostgresWarehouse, Warehouse};
    let Some(db) = TestDatabase::create("plans") else {
        return;
    };
    let sources = common::generated(3000, 20_000, 11);
    let ws = Workspace::with_cluster(sources.path(), &db.cluster, "");
    ws.create_and_load();
    let config = sparkify::config::Config::load(&ws.config()).unwrap();
    let mut warehouse = PostgresWarehouse::connect(&config.cluster).unwrap();
    warehouse.begin().unwrap();
    for statement in sql::prepare_transform(Dialect::Postgres, false) {
        warehouse.execute(&statement).unwrap();
    }
    for (table, statement) in sql::transform(Dialect::Postgres) {
        let plan: Vec<String> = warehouse
            .query(&format!("EXPLAIN {statement}"))
            .unwrap()
            .rows
            .iter()
            .map(|row| row[0].to_string())
            .collect();
        let plan = plan.join("\n");
        assert!(!plan.contains("Nested Loop"), "{}:\n{plan}", table.name);
        if table.name == "songplays" {
            assert!(plan.contains("Hash Left Join"), "{plan}");
        }
    }
    warehouse.rollback().unwrap();

    // The keys etl drops before the large inserts are back after them, under their names...
    let constraints = |warehouse: &mut PostgresWarehouse, table: &str| {
        warehouse
            .query(&format!(
                "SELECT c.relname, k.conname FROM pg_constraint k \
                 JOIN pg_class c ON c.oid = k.conrelid \
                 WHERE k.contype IN ('p', 'u') AND c.relname = '{table}'"
            ))
            .unwrap()
            .rows
    };
    for (table, keys) in [("songplays", 2), ("time", 1)] {
        let found = constraints(&mut warehouse, table);
        assert_eq!(found.len(), keys, "{table}: {found:?}");
    }
    // ...and adding them back refuses a duplicate, which fails the transform.
    let keys = sql::keys_rebuilt_around_insert(Dialect::Postgres, &sparkify::schema::TIME).unwrap();
    warehouse.begin().unwrap();
    warehouse.execute(&keys.drop).unwrap();
    warehouse
        .execute("INSERT INTO time SELECT * FROM time LIMIT 1")
        .unwrap();
    let err = warehouse.execute(&keys.add).unwrap_err();
    assert!(
        format!("{err:#}").contains("could not create unique index"),
        "{err:#}"
    );
    warehouse.rollback().unwrap();
}

#[test]
fn every_quality_check_fails_on_its_seeded_failure_on_postgres() {
    let Some(sample) = udacity_sample() else {
        return;
    };
    let Some(db) = TestDatabase::create("checks") else {
        return;
    };
    let loaded = Workspace::with_cluster(&sample, &db.cluster, "ENGINE=postgres");
    loaded.create_and_load();
    loaded.cmd("check").assert().success();
    for (i, check) in sparkify::checks::all().iter().enumerate() {
        let copy = db.copy(&format!("check{i}"));
        let ws = Workspace::with_cluster(&sample, &copy.cluster, "ENGINE=postgres");
        let seed = common::seed_failure(check, sparkify::sql::Dialect::Postgres);
        let seed: Vec<&str> = seed.iter().map(String::as_str).collect();
        let mut server = copy.server.clone();
        server.dbname(&copy.name);
        admin(&server, &seed).unwrap();
        common::assert_check_fails(&ws, check);
    }
}

#[test]
fn incremental_loads_give_the_tables_of_a_full_load_on_postgres() {
    if TestDatabase::create("incremental_probe").is_none() {
        return;
    }
    let counter = std::cell::Cell::new(0);
    common::assert_incremental_invariants(&|sources: &std::path::Path| {
        counter.set(counter.get() + 1);
        let db = TestDatabase::create(&format!("incremental{}", counter.get())).unwrap();
        let ws = Workspace::with_cluster(sources, &db.cluster, "ENGINE=postgres");
        (ws, Box::new(db) as Box<dyn std::any::Any>)
    });
}

/// Holds `table` of `db` in ACCESS EXCLUSIVE mode, as a load's TRUNCATE does, from a session
/// named `application`, for `held`; returns once the lock is taken.
fn hold_table_lock(
    db: &TestDatabase,
    table: &str,
    application: &str,
    held: Duration,
) -> std::thread::JoinHandle<()> {
    let mut config = db.server.clone();
    config.dbname(&db.name).application_name(application);
    let lock = format!("BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE");
    let (taken, is_taken) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (client, connection) = config.connect(NoTls).await.unwrap();
            tokio::spawn(connection);
            client.batch_execute(&lock).await.unwrap();
            taken.send(()).unwrap();
            tokio::time::sleep(held).await;
            client.batch_execute("ROLLBACK").await.unwrap();
        });
    });
    is_taken.recv().unwrap();
    holder
}

#[test]
fn a_reader_waits_for_a_load_on_postgres_saying_whose_it_is() {
    let Some(db) = TestDatabase::create("readers") else {
        return;
    };
    let sources = tempfile::tempdir().unwrap();
    sources_with_log_lines(sources.path(), "");
    let ws = Workspace::with_cluster(sources.path(), &db.cluster, "");
    ws.cmd("etl").assert().success();
    // A load holds songplays: the reader gives up after its wait, naming the load.
    let holder = hold_table_lock(&db, "songplays", "sparkify etl", Duration::from_secs(4));
    let started = Instant::now();
    ws.cmd("analysis")
        .args(["--query", "top_songs", "--lock-timeout", "2"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "waiting for a load of this toolkit (sparkify etl, PID ",
        ))
        .stderr(predicate::str::contains("on songplays"))
        .stderr(predicate::str::contains("--lock-timeout"));
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(2), "{waited:?}");
    assert!(
        waited < Duration::from_secs(4),
        "it waited past its timeout: {waited:?}"
    );
    holder.join().unwrap();
    // Another program's lock is named as that program's; the reader outlasts it.
    let holder = hold_table_lock(&db, "songs", "nightly-report", Duration::from_millis(1500));
    ws.cmd("check")
        .args(["--lock-timeout", "30"])
        .assert()
        .success()
        .stderr(predicate::str::contains("session PID "))
        .stderr(predicate::str::contains("nightly-report"));
    holder.join().unwrap();
}

#[test]
fn a_shared_postgres_database_keeps_its_own_tables_and_the_warehouse_takes_a_schema() {
    let Some(db) = TestDatabase::create("shared") else {
        return;
    };
    let mut server = db.server.clone();
    server.dbname(&db.name);
    admin(
        &server,
        &["CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT); \
           INSERT INTO users VALUES (1, 'a@example.com'), (2, 'b@example.com')"],
    )
    .unwrap();
    let app_users = || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let server = server.clone();
        runtime.block_on(async move {
            let (client, connection) = server.connect(NoTls).await.unwrap();
            tokio::spawn(connection);
            let row = client
                .query_one("SELECT COUNT(*) FROM public.users", &[])
                .await
                .unwrap();
            row.get::<_, i64>(0)
        })
    };
    let sources = tempfile::tempdir().unwrap();
    sources_with_log_lines(sources.path(), "");
    let ws = Workspace::with_cluster(sources.path(), &db.cluster, "");
    for (binary, args) in [("create_tables", &["--yes"][..]), ("etl", &[][..])] {
        ws.cmd(binary)
            .args(args)
            .assert()
            .code(1)
            .stderr(predicate::str::contains("users"))
            .stderr(predicate::str::contains("did not create"))
            .stderr(predicate::str::contains("[WAREHOUSE] SCHEMA"));
        assert_eq!(app_users(), 2, "{binary} touched the application's users");
    }
    // In a schema of its own, the warehouse lives beside the application's tables.
    ws.write_config_with_cluster(sources.path(), &db.cluster, "SCHEMA = sparkify");
    ws.cmd("etl").assert().success();
    ws.cmd("analysis").assert().success();
    ws.cmd("check").assert().success();
    ws.cmd("create_tables")
        .arg("--yes")
        .assert()
        .success()
        .stdout(predicate::str::contains("dropped "));
    ws.cmd("etl").assert().success();
    assert_eq!(app_users(), 2);
    let tables = ws.rows(None, "songplays");
    assert_eq!(tables.len(), 1, "{tables:?}");
    // A schema name that is not a plain lower-case identifier is refused before any work.
    ws.write_config_with_cluster(sources.path(), &db.cluster, "SCHEMA = Bad-Name");
    ws.cmd("etl")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("[WAREHOUSE] SCHEMA"));
}

/// The indexes of `songplays`'s table in the current schema named `sparkify_songplays_start_time`,
/// each as the table it is on.
fn play_time_index_tables(server: &tokio_postgres::Config) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = server.connect(NoTls).await.unwrap();
        tokio::spawn(connection);
        client
            .query(
                "SELECT tablename::text FROM pg_indexes WHERE schemaname = current_schema() \
                 AND indexname = 'sparkify_songplays_start_time' ORDER BY 1",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect()
    })
}

#[test]
fn postgres_keeps_an_index_on_play_times_and_leaves_a_strangers_of_its_name() {
    let Some(db) = TestDatabase::create("play_index") else {
        return;
    };
    let mut server = db.server.clone();
    server.dbname(&db.name);
    let sources = tempfile::tempdir().unwrap();
    sources_with_log_lines(sources.path(), "");
    let ws = Workspace::with_cluster(sources.path(), &db.cluster, "");
    ws.cmd("create_tables").arg("--yes").assert().success();
    assert_eq!(play_time_index_tables(&server), ["songplays"]);
    // A warehouse made before the index was kept gets it from its next full load...
    let drop = "DROP INDEX sparkify_songplays_start_time";
    admin(&server, &[drop]).unwrap();
    ws.cmd("etl").assert().success();
    assert_eq!(play_time_index_tables(&server), ["songplays"]);
    // ... or from its next merge of a new day.
    admin(&server, &[drop]).unwrap();
    std::fs::write(
        sources
            .path()
            .join("log_data/2018/11/2018-11-02-events.json"),
        common::event(92, 900, 0, "paid", "S", "A", 100.0, 1_543_623_727_796),
    )
    .unwrap();
    ws.cmd("etl")
        .assert()
        .success()
        .stdout(predicate::str::contains("on the rows this load changed"));
    assert_eq!(play_time_index_tables(&server), ["songplays"]);
    assert_eq!(ws.rows(None, "songplays").len(), 2);
    // An index of that name on another table of the schema is never dropped, and the load
    // still succeeds without its own.
    admin(
        &server,
        &[
            drop,
            "CREATE TABLE app_events (at TIMESTAMP)",
            "CREATE INDEX sparkify_songplays_start_time ON app_events (at)",
        ],
    )
    .unwrap();
    ws.cmd("etl").arg("--full-refresh").assert().success();
    assert_eq!(play_time_index_tables(&server), ["app_events"]);
    assert_eq!(ws.rows(None, "songplays").len(), 2);
}
