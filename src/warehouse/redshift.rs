//! Amazon Redshift (provisioned or serverless) over the PostgreSQL wire protocol. It shares the
//! connection, statements and result reading of [`PostgresWarehouse`], with two differences:
//! TLS is always on and the certificate always verified, and staging is not sent by the tool
//! but loaded by Redshift itself with `COPY ... FROM 's3://...'` (see [`super::s3_copy`], which
//! the Data API engine shares).

use anyhow::{bail, Result};
use arrow_array::RecordBatch;

use super::postgres::Binding;
use super::s3_copy::{copy_staging_listed_now, S3Load};
use super::{not_appendable, PostgresWarehouse, QueryResult, Warehouse};
use crate::config::{ClusterConfig, Config, SslMode};
use crate::progress::Progress;
use crate::schema::Table;
use crate::sql::Dialect;
use crate::stats::SourceStats;

pub struct RedshiftWarehouse {
    wire: PostgresWarehouse,
    /// Whether HOST is a provisioned cluster's endpoint, which keeps `stl_load_errors`; a
    /// Serverless endpoint, a VPC endpoint or a custom domain may not.
    provisioned_host: bool,
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
            wire: PostgresWarehouse::connect_with(cluster, mode, Binding::WhenOffered, "Redshift")?,
            provisioned_host: cluster.is_provisioned_redshift(),
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

    fn commit_outcome_unknown(&self, error: &anyhow::Error) -> bool {
        super::postgres::commit_unanswered(error)
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

    fn stage_from_s3(
        &mut self,
        config: &Config,
        load: &S3Load,
        progress: &Progress,
    ) -> Result<Vec<SourceStats>> {
        let provisioned = self.provisioned_host;
        copy_staging_listed_now(self, config, load, provisioned, progress)
    }

    fn append(&mut self, table: &Table, _batch: &RecordBatch) -> Result<()> {
        not_appendable(table)
    }

    fn insert_rows(&mut self, table: &Table, rows: &[crate::record::Row]) -> Result<()> {
        super::insert_as_statements(self, table, rows)
    }
}
