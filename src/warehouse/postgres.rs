//! PostgreSQL over the wire (tokio-postgres), and the connection Redshift shares with it. The
//! tool reads and parses the sources itself and streams each staging batch into the server with
//! `COPY ... FROM STDIN` in text format; the transform then runs on the server, inside the
//! caller's transaction, as on DuckDB. TLS follows `[CLUSTER] SSLMODE` (see [`crate::tls`]).

use std::fmt::Write as _;

use anyhow::{anyhow, bail, Context, Result};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, Int64Type, TimestampMillisecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::SinkExt;
use tokio::runtime::Runtime;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls};

use super::{first_line, pg_socket, Cell, QueryResult, Warehouse};
use crate::config::{ClusterConfig, SslMode};
use crate::pg_auth::{AuthGuard, AuthPolicy, GuardedStream};
use crate::schema::Table;
use crate::sql::{self, Dialect};
use crate::tls;

/// COPY data is sent to the server in pieces of about this size.
const COPY_PIECE_BYTES: usize = 1 << 20;

pub struct PostgresWarehouse {
    runtime: Runtime,
    client: Client,
    /// `user@host:port/db`, for messages.
    place: String,
    /// The SSL mode the connection was made with, for messages.
    sslmode: SslMode,
    /// For a session that only reads: how long a query waits for a load's locks in all.
    reader_wait: Option<std::time::Duration>,
}

/// How long one attempt of a reading query waits for a lock before the session looks up who
/// holds it and says so (see [`PostgresWarehouse::wait_for_locks`]).
const LOCK_PROBE: std::time::Duration = std::time::Duration::from_secs(1);

impl PostgresWarehouse {
    /// Connects to PostgreSQL with the `[CLUSTER]` settings, TLS as [`sslmode_for`] decides.
    pub fn connect(cluster: &ClusterConfig) -> Result<Self> {
        let sslmode = sslmode_for(cluster);
        let mut warehouse =
            Self::connect_with(cluster, sslmode, Binding::RequiredWithScram, "PostgreSQL")?;
        // A killed etl cannot roll back; the server does, but only once it sees the client is
        // gone, which a long INSERT does not look for unless asked (PostgreSQL 14 and later:
        // https://www.postgresql.org/docs/15/runtime-config-connection.html#GUC-CLIENT-CONNECTION-CHECK-INTERVAL).
        // Older servers do not know the setting; they keep their behaviour.
        let _ = warehouse.execute(sql::POSTGRES_CHECK_CLIENT);
        warehouse.execute(sql::POSTGRES_IDLE_IN_TRANSACTION_TIMEOUT)?;
        if sslmode == SslMode::Prefer && !is_local_host(&cluster.host) {
            if let Ok(false) = warehouse.server_reports_tls() {
                tracing::warn!(
                    "{}: sslmode prefer ended in an unencrypted connection (the server offers no \
                     TLS): the password and the data cross the network in plain text; set \
                     [CLUSTER] SSLMODE = verify-full once the server has a certificate",
                    warehouse.place
                );
            }
        }
        Ok(warehouse)
    }

    /// Connects with an explicit SSL mode; `server` names the server kind in errors.
    pub(super) fn connect_with(
        cluster: &ClusterConfig,
        sslmode: SslMode,
        binding: Binding,
        server: &str,
    ) -> Result<Self> {
        let place = crate::record::escape_controls(&format!(
            "{}@{}:{}/{}",
            cluster.db_user, cluster.host, cluster.db_port, cluster.db_name
        ));
        let mut config = tokio_postgres::Config::new();
        config
            .host(&cluster.host)
            .port(cluster.db_port)
            .dbname(&cluster.db_name)
            .user(&cluster.db_user)
            .application_name(application_name());
        if !cluster.db_password.is_empty() {
            config.password(cluster.db_password.expose());
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the PostgreSQL client runtime")?;
        // The whole of connecting (TCP, TLS, the server's greeting and authentication) within
        // CONNECT_TIMEOUT: tokio-postgres's own connect_timeout covers the TCP connect alone,
        // so a listener that never answers would hold the run forever.
        let deadline = tokio::time::Instant::now() + cluster.connect_timeout;
        let no_answer = || {
            anyhow!(
                "no {server} answer at {}:{} within {} s: check [CLUSTER] HOST and DB_PORT (is \
                 it the server's port?), or raise [CLUSTER] CONNECT_TIMEOUT",
                crate::record::escape_controls(&cluster.host),
                cluster.db_port,
                cluster.connect_timeout.as_secs()
            )
        };
        // One TLS configuration (reading SSLROOTCERT once) for the connection and its cancels.
        let tls_config = match sslmode {
            SslMode::Disable => None,
            mode => Some(tls::client_config(mode, cluster.sslrootcert.as_deref())?),
        };
        config.ssl_mode(match sslmode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        let policy = auth_policy(cluster, sslmode);
        // The socket is opened here (see pg_socket), and the connection made over it: TCP,
        // TLS as sslmode says, authentication under the guard's eye.
        let host = cluster.host.clone();
        let port = cluster.db_port;
        let connect = |config: &tokio_postgres::Config| -> Result<Result<Client, ConnectError>> {
            let attempt = async {
                let socket = pg_socket::Socket::connect(&host, port)
                    .await
                    .map_err(ConnectError::Socket)?;
                let ssl_first = sslmode != SslMode::Disable;
                let stream = GuardedStream::new(socket, AuthGuard::new(policy.clone(), ssl_first));
                match &tls_config {
                    None => {
                        let (client, connection) = config
                            .connect_raw(stream, NoTls)
                            .await
                            .map_err(ConnectError::Postgres)?;
                        runtime.spawn(watch(connection));
                        Ok(client)
                    }
                    Some(tls_config) => {
                        let mut make = tls::ScramAware::new(tls_config.clone(), policy.clone());
                        let connector =
                            MakeTlsConnect::<GuardedStream<pg_socket::Socket>>::make_tls_connect(
                                &mut make, &host,
                            )
                            .map_err(|e| ConnectError::Tls(e.to_string()))?;
                        let connected = config.connect_raw(stream, connector).await;
                        let (client, connection) = connected.map_err(|e| {
                            if is_channel_binding_refusal(&e) && make.scram_asked() {
                                ConnectError::ScramWithoutBinding(e)
                            } else {
                                ConnectError::Postgres(e)
                            }
                        })?;
                        runtime.spawn(watch(connection));
                        Ok(client)
                    }
                }
            };
            runtime
                .block_on(async { tokio::time::timeout_at(deadline, attempt).await })
                .map_err(|_| no_answer())
        };
        let connected = if tls_config.is_some()
            && binding == Binding::RequiredWithScram
            && !cluster.db_password.is_empty()
        {
            // SCRAM over TLS must bind the session to the certificate the client saw
            // (SCRAM-SHA-256-PLUS): without it, a relay holding another certificate could pass
            // the exchange on. tokio-postgres can only require binding for every method, so a
            // refusal is looked at: SCRAM without binding is refused; another method (trust,
            // md5, password: each still under the guard's policy) or a plain connection
            // (prefer, when the server has no TLS) is tried again without it.
            config.channel_binding(tokio_postgres::config::ChannelBinding::Require);
            match connect(&config)? {
                Err(ConnectError::ScramWithoutBinding(e)) => Err(anyhow!(e).context(
                    "the server asked for SCRAM authentication over TLS without channel \
                     binding (SCRAM-SHA-256-PLUS), which would let a relay with another \
                     certificate pass the password exchange on: check that HOST is the server \
                     itself",
                )),
                Err(ConnectError::Postgres(e)) if is_channel_binding_refusal(&e) => {
                    config.channel_binding(tokio_postgres::config::ChannelBinding::Prefer);
                    connect(&config)?.map_err(ConnectError::into_anyhow)
                }
                other => other.map_err(ConnectError::into_anyhow),
            }
        } else {
            connect(&config)?.map_err(ConnectError::into_anyhow)
        };
        let client: Client = connected.map_err(|e| {
            let hint = if format!("{e:#}").contains("REQUIRE_AUTH") {
                "the password was not sent (see above)"
            } else if format!("{e:#}").contains("certificate") {
                "the server's TLS certificate was not accepted: set [CLUSTER] SSLROOTCERT to the \
                 PEM file of the CA that signed it, or check that HOST is the name in it"
            } else if cluster.db_port == 5439 && server == "PostgreSQL" {
                // The default of dwh.cfg is Redshift's port.
                "DB_PORT is 5439, Redshift's port (and dwh.cfg's default): PostgreSQL listens \
                 on 5432 unless set otherwise: set [CLUSTER] DB_PORT = 5432"
            } else {
                "check [CLUSTER] HOST, DB_PORT, DB_NAME, DB_USER, DB_PASSWORD and SSLMODE"
            };
            e.context(format!(
                "cannot connect to {server} at {place} (sslmode {}): {hint}",
                sslmode.name()
            ))
        })?;
        register_cancel(&client, tls_config, cluster.host.clone(), cluster.db_port);
        Ok(PostgresWarehouse {
            runtime,
            client,
            place,
            sslmode,
            reader_wait: None,
        })
    }

    /// Makes this a reading session whose queries wait at most `wait` in all for a load's
    /// locks (a load's TRUNCATE holds its tables until it commits): each attempt waits
    /// [`LOCK_PROBE`] under `lock_timeout`
    /// (https://www.postgresql.org/docs/15/runtime-config-client.html#GUC-LOCK-TIMEOUT; 0 would
    /// mean no limit), then the holder is looked up in pg_locks and named, and the query tried
    /// again. A query that fails on its lock changed nothing, so trying it again is safe.
    pub fn wait_for_locks(&mut self, wait: std::time::Duration) -> Result<()> {
        self.execute(&sql::postgres_lock_timeout(LOCK_PROBE.min(wait)))?;
        self.reader_wait = Some(wait);
        Ok(())
    }

    /// Says, once a wait has lasted [`LOCK_PROBE`], who it waits for and how long it may wait.
    fn say_waiting(&self, holder: &str, what: &str, wait: std::time::Duration) {
        tracing::warn!(
            "waiting for {holder} to finish {what} {}; up to {} s in all (--lock-timeout)",
            self.describe(),
            wait.as_secs()
        );
    }

    /// Who holds what a failed attempt waited for, in words, from `holder_sql` (see
    /// [`sql::POSTGRES_TABLE_LOCK_HOLDER`]); "another session" when it cannot be told.
    fn lock_holder(&mut self, holder_sql: &str) -> String {
        let found = self
            .query_once(holder_sql)
            .ok()
            .and_then(|r| r.rows.into_iter().next());
        let Some(row) = found else {
            return "another session".into();
        };
        let text = |i: usize| row.get(i).map(|c| c.to_string()).unwrap_or_default();
        let (pid, application, user, since, table) = (text(0), text(1), text(2), text(3), text(4));
        let what = if table.is_empty() {
            String::new()
        } else {
            format!(" on {table}")
        };
        let since = if since.is_empty() {
            String::new()
        } else {
            format!(", its transaction open since {since}")
        };
        let holder = if application.starts_with("sparkify") {
            format!("a load of this toolkit ({application}, PID {pid}, user {user}{since})")
        } else if application.is_empty() {
            format!("session PID {pid} (user {user}{since})")
        } else {
            format!("session PID {pid} ({application}, user {user}{since})")
        };
        crate::record::escape_controls(&format!("{holder}{what}"))
    }

    fn query_once(&mut self, sql: &str) -> Result<QueryResult> {
        super::stop_if_interrupted(sql)?;
        super::log_statement("postgres", sql);
        let context = || format!("PostgreSQL failed on: {}", first_line(sql));
        let statement = self
            .runtime
            .block_on(self.client.prepare(sql))
            .with_context(context)?;
        let rows = self
            .runtime
            .block_on(self.client.query(&statement, &[]))
            .with_context(context)?;
        let columns = statement
            .columns()
            .iter()
            .map(|c| c.name().to_string())
            .collect::<Vec<_>>();
        let rows = rows
            .iter()
            .map(|row| (0..columns.len()).map(|i| cell(row, i)).collect())
            .collect::<Result<Vec<Vec<Cell>>>>()
            .with_context(context)?;
        Ok(QueryResult { columns, rows })
    }

    /// Whether the session is encrypted, as the server sees it (PostgreSQL's `pg_stat_ssl`).
    pub fn server_reports_tls(&mut self) -> Result<bool> {
        let result = self.query(sql::POSTGRES_SESSION_USES_TLS)?;
        Ok(result.single_int() == Some(1))
    }

    pub(super) fn place(&self) -> &str {
        &self.place
    }

    pub(super) fn sslmode(&self) -> SslMode {
        self.sslmode
    }
}

/// On Ctrl-C, asks the server to cancel the statement this connection runs: PostgreSQL's
/// cancel request, on a connection of its own, as libpq's PQcancel sends it
/// (https://www.postgresql.org/docs/15/protocol-flow.html#id-1.10.6.7.9). The canceled
/// statement fails, and the run rolls back. Redshift speaks the same protocol; whatever it does
/// with the request, the session ends when the binary exits, and Redshift rolls back the
/// transaction of a session that ends and releases its locks
/// (https://docs.aws.amazon.com/redshift/latest/dg/PG_TERMINATE_BACKEND.html).
/// `tls` is the connection's own TLS configuration (`None` without TLS).
fn register_cancel(client: &Client, tls: Option<rustls::ClientConfig>, host: String, port: u16) {
    let token = client.cancel_token();
    crate::interrupt::on_interrupt(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        // A cancel request carries the session's key, not the password: any method goes.
        let sent = runtime.block_on(async {
            let socket = pg_socket::Socket::connect(&host, port)
                .await
                .map_err(|e| e.to_string())?;
            match &tls {
                None => token.cancel_query_raw(socket, NoTls).await,
                Some(config) => {
                    let mut make = tls::ScramAware::new(config.clone(), AuthPolicy::any(&host));
                    let connector =
                        MakeTlsConnect::<pg_socket::Socket>::make_tls_connect(&mut make, &host)
                            .map_err(|e| e.to_string())?;
                    token.cancel_query_raw(socket, connector).await
                }
            }
            .map_err(|e| e.to_string())
        });
        if let Err(e) = sent {
            eprintln!("could not ask the server to cancel the running statement: {e}");
        }
    });
}

/// How a connection attempt failed, for [`PostgresWarehouse::connect_with`] to decide whether to
/// try again.
enum ConnectError {
    /// No TCP (or Unix socket) connection.
    Socket(std::io::Error),
    /// The TLS connector could not be made for the host name.
    Tls(String),
    /// The server asked for SCRAM over TLS without channel binding (refused).
    ScramWithoutBinding(tokio_postgres::Error),
    Postgres(tokio_postgres::Error),
}

impl ConnectError {
    fn into_anyhow(self) -> anyhow::Error {
        match self {
            ConnectError::Socket(e) => anyhow!(e).context("cannot open a connection"),
            ConnectError::Tls(e) => anyhow!("cannot set up TLS: {e}"),
            ConnectError::ScramWithoutBinding(e) | ConnectError::Postgres(e) => anyhow!(e),
        }
    }
}

/// The methods of proving the password a connection to `cluster` with `sslmode` accepts (see
/// [`crate::pg_auth`]): `[CLUSTER] REQUIRE_AUTH`, else every method when the server's
/// certificate is verified and only SCRAM or none otherwise.
fn auth_policy(cluster: &ClusterConfig, sslmode: SslMode) -> AuthPolicy {
    let place = crate::record::escape_controls(&format!("{}:{}", cluster.host, cluster.db_port));
    let unix = cluster.host.starts_with('/');
    let why = if unix {
        "a Unix socket's server is not verified by a certificate".to_string()
    } else {
        match sslmode {
            SslMode::Disable => "sslmode disable neither encrypts nor verifies the server".into(),
            SslMode::Prefer => "sslmode prefer does not verify the server's certificate (and \
                                may not encrypt at all)"
                .into(),
            SslMode::Require => "sslmode require encrypts but does not verify the server's \
                                 certificate"
                .into(),
            _ => String::new(),
        }
    };
    let verified = !unix && matches!(sslmode, SslMode::VerifyCa | SslMode::VerifyFull);
    AuthPolicy::new(cluster.require_auth.as_deref(), verified, &why, &place)
}

/// Whether `error` (of a COMMIT) carries no answer of the server: a tokio-postgres error
/// without a SQLSTATE, or an I/O error. Shared with the Redshift wire engine.
pub(super) fn commit_unanswered(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<tokio_postgres::Error>()
            .is_some_and(|e| e.as_db_error().is_none())
            || cause.downcast_ref::<std::io::Error>().is_some()
    })
}

/// Whether a connection insists on SCRAM channel binding over TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// SCRAM over TLS must use channel binding (PostgreSQL).
    RequiredWithScram,
    /// Used when the server offers it (Redshift, which authenticates by md5 and always
    /// verifies the certificate).
    WhenOffered,
}

/// Whether tokio-postgres refused a connection because channel binding was required and not
/// used.
fn is_channel_binding_refusal(error: &tokio_postgres::Error) -> bool {
    std::error::Error::source(error)
        .is_some_and(|cause| cause.to_string().contains("channel binding"))
}

/// The SSL mode of a PostgreSQL connection, as libpq would choose it but safe by default:
/// `[CLUSTER] SSLMODE` when set, with `require` plus `SSLROOTCERT` meaning `verify-ca` ("if a
/// root CA file exists, the behavior of sslmode=require will be the same as that of
/// verify-ca": https://www.postgresql.org/docs/15/libpq-ssl.html#LIBPQ-SSL-PROTECTION);
/// unset, `prefer` for this machine (a loopback address, `localhost`, a Unix socket
/// directory) and `verify-full` for any other host, so a password never goes to a server
/// whose certificate was not checked unless the config says so.
pub fn sslmode_for(cluster: &ClusterConfig) -> SslMode {
    match cluster.sslmode {
        Some(SslMode::Require) if cluster.sslrootcert.is_some() => SslMode::VerifyCa,
        Some(mode) => mode,
        None if is_local_host(&cluster.host) => SslMode::Prefer,
        None => SslMode::VerifyFull,
    }
}

/// Whether `host` is this machine: a Unix socket directory, `localhost`, or a loopback
/// address.
pub fn is_local_host(host: &str) -> bool {
    let host = host.trim();
    host.is_empty()
        || host.starts_with('/')
        || host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Drives a connection until it closes; an abnormal end is logged.
async fn watch<F, E>(connection: F)
where
    F: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    if let Err(e) = connection.await {
        tracing::error!("server connection closed: {e}");
    }
}

/// Appends one value to COPY text: `\N` for NULL, backslash escapes for the separators.
fn copy_text_value(out: &mut BytesMut, text: &str) {
    for byte in text.bytes() {
        match byte {
            b'\\' => out.put_slice(b"\\\\"),
            b'\t' => out.put_slice(b"\\t"),
            b'\n' => out.put_slice(b"\\n"),
            b'\r' => out.put_slice(b"\\r"),
            other => out.put_u8(other),
        }
    }
}

/// Writes row `row` of `batch` as one line of COPY text format.
fn copy_text_row(out: &mut BytesMut, batch: &RecordBatch, row: usize, scratch: &mut String) {
    for (index, column) in batch.columns().iter().enumerate() {
        if index > 0 {
            out.put_u8(b'\t');
        }
        if column.is_null(row) {
            out.put_slice(b"\\N");
            continue;
        }
        scratch.clear();
        let _ = match column.data_type() {
            DataType::Utf8 => {
                copy_text_value(out, column.as_string::<i32>().value(row));
                continue;
            }
            DataType::Int32 => write!(scratch, "{}", column.as_primitive::<Int32Type>().value(row)),
            DataType::Int64 => write!(scratch, "{}", column.as_primitive::<Int64Type>().value(row)),
            DataType::Float64 => {
                write!(
                    scratch,
                    "{:?}",
                    column.as_primitive::<Float64Type>().value(row)
                )
            }
            DataType::Timestamp(TimeUnit::Millisecond, None) => {
                let ms = column.as_primitive::<TimestampMillisecondType>().value(row);
                let time = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
                write!(
                    scratch,
                    "{}",
                    time.naive_utc().format("%Y-%m-%d %H:%M:%S%.3f")
                )
            }
            other => unreachable!("staging batches hold no {other} columns"),
        };
        out.put_slice(scratch.as_bytes());
    }
    out.put_u8(b'\n');
}

/// What the server's sessions list this process as: `sparkify` and the binary (`sparkify etl`),
/// so that a reader waiting for a load can tell whose it is.
fn application_name() -> String {
    let binary = std::env::args_os()
        .next()
        .and_then(|arg| {
            std::path::Path::new(&arg)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .filter(|name| {
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    match binary {
        Some(binary) => format!("sparkify {binary}"),
        None => "sparkify".into(),
    }
}

/// Whether a query failed because `lock_timeout` ended its wait for a lock (SQLSTATE 55P03).
fn is_lock_timeout(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<tokio_postgres::Error>())
        .any(|e| e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE))
}

fn cell(row: &tokio_postgres::Row, index: usize) -> Result<Cell> {
    let column = &row.columns()[index];
    let cell = match *column.type_() {
        Type::INT2 => row
            .try_get::<_, Option<i16>>(index)?
            .map(|v| Cell::Int(v.into())),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(index)?
            .map(|v| Cell::Int(v.into())),
        Type::INT8 => row.try_get::<_, Option<i64>>(index)?.map(Cell::Int),
        Type::FLOAT4 => row
            .try_get::<_, Option<f32>>(index)?
            .map(|v| Cell::Float(v.into())),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(index)?.map(Cell::Float),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(index)?
            .map(|v| Cell::Int(v.into())),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            row.try_get::<_, Option<String>>(index)?.map(Cell::Text)
        }
        Type::TIMESTAMP => row
            .try_get::<_, Option<chrono::NaiveDateTime>>(index)?
            .map(|t| Cell::Text(t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())),
        ref other => bail!(
            "column {} has type {other}, which this tool does not read: cast it in the query",
            column.name()
        ),
    };
    Ok(cell.unwrap_or(Cell::Null))
}

impl Warehouse for PostgresWarehouse {
    fn describe(&self) -> String {
        format!("postgres {}", self.place)
    }

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    /// Unknown unless the server answered: a SQLSTATE means it refused and rolled back; a
    /// closed or broken connection leaves the COMMIT's fate with the server.
    fn commit_outcome_unknown(&self, error: &anyhow::Error) -> bool {
        commit_unanswered(error)
    }

    fn execute(&mut self, sql: &str) -> Result<()> {
        super::stop_if_interrupted(sql)?;
        super::log_statement("postgres", sql);
        self.runtime
            .block_on(self.client.batch_execute(sql))
            .with_context(|| format!("PostgreSQL failed on: {}", first_line(sql)))
    }

    fn query(&mut self, sql: &str) -> Result<QueryResult> {
        let Some(wait) = self.reader_wait else {
            return self.query_once(sql);
        };
        let started = std::time::Instant::now();
        let mut said = false;
        loop {
            match self.query_once(sql) {
                Err(error) if is_lock_timeout(&error) => {
                    let holder = self.lock_holder(sql::POSTGRES_TABLE_LOCK_HOLDER);
                    let waited = started.elapsed();
                    if waited >= wait {
                        bail!(
                            "{} is held by {holder}; waited {} s: wait for it to finish, or \
                             pass --lock-timeout SECONDS to wait longer",
                            self.describe(),
                            waited.as_secs()
                        );
                    }
                    if !said {
                        self.say_waiting(&holder, "with", wait);
                        said = true;
                    }
                }
                other => return other,
            }
        }
    }

    /// Takes the load's advisory lock, asking again every 200 ms until `timeout` has passed,
    /// and saying after a second who holds it (see [`sql::lock_for_load`]).
    fn lock_for_load(&mut self, timeout: std::time::Duration) -> Result<()> {
        let started = std::time::Instant::now();
        let mut said = false;
        loop {
            if self.query_once(&sql::try_load_lock())?.single_int() == Some(1) {
                return Ok(());
            }
            let waited = started.elapsed();
            if waited >= timeout {
                let holder = self.lock_holder(&sql::postgres_load_lock_holder());
                bail!("the load's lock is held by {holder}");
            }
            if !said && waited >= LOCK_PROBE {
                let holder = self.lock_holder(&sql::postgres_load_lock_holder());
                self.say_waiting(&holder, "loading", timeout);
                said = true;
            }
            if crate::interrupt::requested() {
                return Err(crate::interrupt::Interrupted.into());
            }
            std::thread::sleep((timeout - waited).min(std::time::Duration::from_millis(200)));
        }
    }

    fn append(&mut self, table: &Table, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let copy = sql::copy_from_stdin(table);
        super::stop_if_interrupted(&copy)?;
        let client = &self.client;
        self.runtime
            .block_on(async {
                let sink = client.copy_in::<_, Bytes>(copy.as_str()).await?;
                futures_util::pin_mut!(sink);
                let mut piece = BytesMut::with_capacity(COPY_PIECE_BYTES + 4096);
                let mut scratch = String::new();
                for row in 0..batch.num_rows() {
                    copy_text_row(&mut piece, batch, row, &mut scratch);
                    if piece.len() >= COPY_PIECE_BYTES {
                        sink.send(piece.split().freeze()).await?;
                    }
                }
                if !piece.is_empty() {
                    sink.send(piece.freeze()).await?;
                }
                sink.finish().await
            })
            .map_err(|e| anyhow!(e))
            .with_context(|| format!("PostgreSQL COPY into {} failed", table.name))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::record_batch;
    use crate::record::Field;
    use crate::schema::LOAD_ERRORS;

    #[test]
    fn copy_text_escapes_separators_and_marks_nulls() {
        let rows = vec![vec![
            Field::Text("log\\data".into()),
            Field::Text("a\tb\nc\rd".into()),
            Field::Int(7),
            Field::Text("é ok".into()),
            Field::Null,
        ]];
        let batch = record_batch(&LOAD_ERRORS, &rows).unwrap();
        let mut out = BytesMut::new();
        copy_text_row(&mut out, &batch, 0, &mut String::new());
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "log\\\\data\ta\\tb\\nc\\rd\t7\té ok\t\\N\n"
        );
    }
}
