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
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls};

use super::{first_line, Cell, QueryResult, Warehouse};
use crate::config::{ClusterConfig, SslMode};
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
}

impl PostgresWarehouse {
    /// Connects to PostgreSQL with the `[CLUSTER]` settings; `SSLMODE` defaults to `prefer`.
    pub fn connect(cluster: &ClusterConfig) -> Result<Self> {
        Self::connect_with(
            cluster,
            cluster.sslmode.unwrap_or(SslMode::Prefer),
            "PostgreSQL",
        )
    }

    /// Connects with an explicit SSL mode; `server` names the server kind in errors.
    pub(super) fn connect_with(
        cluster: &ClusterConfig,
        sslmode: SslMode,
        server: &str,
    ) -> Result<Self> {
        let place = format!(
            "{}@{}:{}/{}",
            cluster.db_user, cluster.host, cluster.db_port, cluster.db_name
        );
        let mut config = tokio_postgres::Config::new();
        config
            .host(&cluster.host)
            .port(cluster.db_port)
            .dbname(&cluster.db_name)
            .user(&cluster.db_user)
            .application_name("sparkify");
        if !cluster.db_password.is_empty() {
            config.password(cluster.db_password.expose());
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the PostgreSQL client runtime")?;
        let connected = match sslmode {
            SslMode::Disable => {
                config.ssl_mode(tokio_postgres::config::SslMode::Disable);
                runtime
                    .block_on(config.connect(NoTls))
                    .map(|(client, connection)| {
                        runtime.spawn(watch(connection));
                        client
                    })
            }
            mode => {
                config.ssl_mode(if mode == SslMode::Prefer {
                    tokio_postgres::config::SslMode::Prefer
                } else {
                    tokio_postgres::config::SslMode::Require
                });
                let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls::client_config(
                    mode,
                    cluster.sslrootcert.as_deref(),
                )?);
                runtime
                    .block_on(config.connect(tls))
                    .map(|(client, connection)| {
                        runtime.spawn(watch(connection));
                        client
                    })
            }
        };
        let client = connected.map_err(|e| {
            let e = anyhow!(e);
            let hint = if format!("{e:#}").contains("certificate") {
                "the server's TLS certificate was not accepted: set [CLUSTER] SSLROOTCERT to the \
                 PEM file of the CA that signed it, or check that HOST is the name in it"
            } else {
                "check [CLUSTER] HOST, DB_PORT, DB_NAME, DB_USER, DB_PASSWORD and SSLMODE"
            };
            e.context(format!(
                "cannot connect to {server} at {place} (sslmode {}): {hint}",
                sslmode.name()
            ))
        })?;
        Ok(PostgresWarehouse {
            runtime,
            client,
            place,
            sslmode,
        })
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

    fn execute(&mut self, sql: &str) -> Result<()> {
        self.runtime
            .block_on(self.client.batch_execute(sql))
            .with_context(|| format!("PostgreSQL failed on: {}", first_line(sql)))
    }

    fn query(&mut self, sql: &str) -> Result<QueryResult> {
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

    fn append(&mut self, table: &Table, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let copy = sql::copy_from_stdin(table);
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
