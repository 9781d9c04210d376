//! What a session runs around the work: transactions, the load lock that keeps two loads
//! apart, each engine's session settings (memory, timeouts, keep-alive) and the schema a
//! warehouse lives in.

use crate::config::MemoryLimit;

use super::Dialect;

/// Transaction control, the same in every dialect.
pub const BEGIN: &str = "BEGIN";
pub const COMMIT: &str = "COMMIT";
pub const ROLLBACK: &str = "ROLLBACK";

/// The key of the PostgreSQL advisory lock every `etl` run takes: "SPKYETL" in ASCII.
pub const LOAD_LOCK_KEY: i64 = 0x0053_504B_5945_544C;

/// Takes the load's advisory lock if no other session holds it: true, or false at once.
pub fn try_load_lock() -> String {
    format!("SELECT pg_try_advisory_xact_lock({LOAD_LOCK_KEY})")
}

/// How long each statement of a PostgreSQL session waits for a lock before it fails with
/// SQLSTATE 55P03; at least 1 ms, since 0 means no limit
/// (https://www.postgresql.org/docs/15/runtime-config-client.html#GUC-LOCK-TIMEOUT).
pub fn postgres_lock_timeout(wait: std::time::Duration) -> String {
    format!("SET lock_timeout = {}", wait.as_millis().max(1))
}

/// The session that holds the load's advisory lock: pid, application, user, when its
/// transaction began. pg_locks shows a bigint key "with its high-order half in the classid
/// column, its low-order half in the objid column, and objsubid equal to 1"
/// (https://www.postgresql.org/docs/15/view-pg-locks.html).
pub fn postgres_load_lock_holder() -> String {
    format!(
        "SELECT l.pid, COALESCE(a.application_name, ''), COALESCE(a.usename::text, ''), \
         COALESCE(to_char(a.xact_start, 'HH24:MI:SS'), ''), '' \
         FROM pg_catalog.pg_locks l LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
         AND l.classid::bigint = {} AND l.objid::bigint = {} AND l.pid <> pg_backend_pid() \
         AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()) \
         LIMIT 1",
        LOAD_LOCK_KEY >> 32,
        LOAD_LOCK_KEY & 0xffff_ffff
    )
}

/// The session that holds a table of the current schema in ACCESS EXCLUSIVE mode (a load's
/// TRUNCATE, which readers wait for: https://www.postgresql.org/docs/15/explicit-locking.html):
/// pid, application, user, when its transaction began, the table.
pub const POSTGRES_TABLE_LOCK_HOLDER: &str = "SELECT l.pid, COALESCE(a.application_name, ''), \
     COALESCE(a.usename::text, ''), COALESCE(to_char(a.xact_start, 'HH24:MI:SS'), ''), \
     c.relname::text \
     FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_class c ON c.oid = l.relation \
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid \
     WHERE l.granted AND l.mode = 'AccessExclusiveLock' AND n.nspname = current_schema() \
     AND l.pid <> pg_backend_pid() ORDER BY a.xact_start LIMIT 1";

/// The statements that make this transaction the only load of the warehouse, run right after
/// BEGIN, waiting at most `timeout` for another load to end (zero: at once).
///
/// PostgreSQL: a transaction-scoped advisory lock, released by COMMIT or ROLLBACK, asked for
/// without waiting ([`try_load_lock`]); the engine asks again until it is granted or `timeout`
/// has passed, saying after a second who holds it
/// (https://www.postgresql.org/docs/15/functions-admin.html#FUNCTIONS-ADVISORY-LOCKS).
///
/// Redshift has neither advisory locks nor `lock_timeout`: `LOCK` takes staging_events in
/// ACCESS EXCLUSIVE mode until the transaction ends, "waiting if necessary for any conflicting
/// locks to be released" (https://docs.aws.amazon.com/redshift/latest/dg/r_LOCK.html), so the
/// wait is bounded by `statement_timeout`, which also counts queueing in WLM
/// (https://docs.aws.amazon.com/redshift/latest/dg/r_statement_timeout.html): at least 1 s,
/// then restored to its default by RESET
/// (https://docs.aws.amazon.com/redshift/latest/dg/r_RESET.html), so the COPYs and the
/// transform that follow in the same transaction are not cut short by it.
///
/// DuckDB: none; its file lock refuses a second writer when the file is opened.
pub fn lock_for_load(dialect: Dialect, timeout: std::time::Duration) -> Vec<String> {
    let millis = timeout.as_millis();
    match dialect {
        Dialect::DuckDb => Vec::new(),
        Dialect::Postgres => vec![try_load_lock()],
        Dialect::Redshift => vec![
            format!("SET statement_timeout TO {}", millis.max(1000)),
            "LOCK staging_events".to_string(),
            "RESET statement_timeout".to_string(),
        ],
    }
}

/// DuckDB session settings. Row order in a table carries no meaning here (every key and number
/// is computed by ORDER BY), and not keeping it made the songplays transform 20% faster.
/// DuckDB may use 80% of the machine's memory by default and held a 1M-event load's
/// transaction in 874 MiB; under `memory_limit` (`[WAREHOUSE] DUCKDB_MEMORY_LIMIT`, by default
/// a quarter of the machine's memory between 512 MiB and 8 GiB, see
/// `config::MemoryLimit::default_limit`) it spills to `DUCKDB_PATH.tmp/` beside the file instead
/// (https://duckdb.org/docs/stable/configuration/overview, `memory_limit`, `temp_directory`):
/// measured at 1M events under 512MB, peak 520-555 MiB and 3% slower (6.2 s against 6.07 s); at 256 MB
/// the transform took twice as long. At 10M events: peak 737 MiB, transform 84 s; with 2GB,
/// 733 MiB and 70 s; with 8GB, 716 MiB and 58 s (one run each).
pub fn duckdb_session(memory_limit: &MemoryLimit) -> String {
    format!(
        "SET preserve_insertion_order = false; SET memory_limit = '{}'",
        memory_limit.as_str()
    )
}

/// What keeps a Data API session alive while a load works on S3: it reads nothing and changes
/// nothing, inside the load's transaction or out of it.
pub const KEEP_SESSION_ALIVE: &str = "SELECT 1";

/// The file and format of the database a DuckDB connection opened
/// (https://duckdb.org/docs/stable/sql/meta/duckdb_table_functions#duckdb_databases).
pub const DUCKDB_OPENED_DATABASE: &str =
    "SELECT path, type FROM duckdb_databases() WHERE database_name = current_database()";

/// Asks PostgreSQL to check every second, while a query runs, that the client is still there,
/// so the work of a killed client is rolled back and its locks released.
pub const POSTGRES_CHECK_CLIENT: &str = "SET client_connection_check_interval = 1000";

/// Ends this session on the server when it sits inside a transaction without sending anything
/// for 15 minutes (a client stopped in a way the network does not show), so its locks do not
/// hold readers and the next load for ever
/// (https://www.postgresql.org/docs/15/runtime-config-client.html#GUC-IDLE-IN-TRANSACTION-SESSION-TIMEOUT).
/// A load never pauses that long between statements: its longest pause is an S3 request's
/// retries, bounded by `[S3] ATTEMPT_TIMEOUT`.
pub const POSTGRES_IDLE_IN_TRANSACTION_TIMEOUT: &str =
    "SET idle_in_transaction_session_timeout = '15min'";

/// Whether this PostgreSQL session is encrypted, as the server sees it.
pub const POSTGRES_SESSION_USES_TLS: &str =
    "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

/// The statements that make `schema` (`[WAREHOUSE] SCHEMA`, checked to be a plain lower-case
/// name) the one a session's unqualified table names resolve to: made first when `create` (a
/// step that writes), only chosen otherwise. PostgreSQL:
/// https://www.postgresql.org/docs/15/sql-createschema.html and
/// https://www.postgresql.org/docs/15/ddl-schemas.html#DDL-SCHEMAS-PATH; Redshift: CREATE
/// SCHEMA IF NOT EXISTS (https://docs.aws.amazon.com/redshift/latest/dg/r_CREATE_SCHEMA.html)
/// and search_path ("When objects are created without a specific target schema, they are
/// placed in the first schema listed in the search path":
/// https://docs.aws.amazon.com/redshift/latest/dg/r_search_path.html).
pub fn use_schema(schema: &str, create: bool) -> Vec<String> {
    let mut statements = Vec::new();
    if create {
        statements.push(format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""));
    }
    statements.push(format!("SET search_path TO \"{schema}\""));
    statements
}
