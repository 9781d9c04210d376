//! Amazon Redshift (provisioned or serverless) over the PostgreSQL wire protocol. It shares the
//! connection, statements and result reading of [`PostgresWarehouse`], with two differences:
//! TLS is always on and the certificate always verified, and staging is not sent by the tool
//! but loaded by Redshift itself with `COPY ... FROM 's3://...'` (see `etl`).

use anyhow::{bail, Result};
use arrow_array::RecordBatch;

use super::{PostgresWarehouse, QueryResult, Warehouse};
use crate::config::{ClusterConfig, SslMode};
use crate::schema::Table;
use crate::sql::Dialect;

pub struct RedshiftWarehouse {
    wire: PostgresWarehouse,
}

impl RedshiftWarehouse {
    /// Connects with TLS, verifying the certificate against the bundled Mozilla roots (or
    /// `[CLUSTER] SSLROOTCERT`). `SSLMODE` may only be `verify-full` (the default) or
    /// `verify-ca`.
    pub fn connect(cluster: &ClusterConfig) -> Result<Self> {
        let mode = match cluster.sslmode {
            None => SslMode::VerifyFull,
            Some(mode @ (SslMode::VerifyCa | SslMode::VerifyFull)) => mode,
            Some(other) => bail!(
                "[CLUSTER] SSLMODE = {}: the redshift engine always encrypts and verifies the \
                 server certificate: remove SSLMODE or set it to verify-full",
                other.name()
            ),
        };
        Ok(RedshiftWarehouse {
            wire: PostgresWarehouse::connect_with(cluster, mode, "Redshift")?,
        })
    }
}

impl Warehouse for RedshiftWarehouse {
    fn describe(&self) -> String {
        format!(
            "redshift {} (TLS {})",
            self.wire.place(),
            self.wire.sslmode().name()
        )
    }

    fn dialect(&self) -> Dialect {
        Dialect::Redshift
    }

    fn execute(&mut self, sql: &str) -> Result<()> {
        self.wire.execute(sql)
    }

    fn query(&mut self, sql: &str) -> Result<QueryResult> {
        self.wire.query(sql)
    }

    fn stages_from_s3(&self) -> bool {
        true
    }

    fn append(&mut self, table: &Table, _batch: &RecordBatch) -> Result<()> {
        bail!(
            "{} is loaded by Redshift's COPY from S3, not by the tool",
            table.name
        )
    }
}
