//! Amazon Redshift (provisioned or serverless) over the PostgreSQL wire protocol. It shares the
//! connection, statements and result reading of [`PostgresWarehouse`], with two differences:
//! TLS is always on and the certificate always verified, and staging is not sent by the tool
//! but loaded by Redshift itself with `COPY ... FROM 's3://...'` ([`copy_staging_from_s3`],
//! which the Data API engine shares).

use anyhow::{anyhow, bail, Result};
use arrow_array::RecordBatch;

use super::{not_appendable, Cell, PostgresWarehouse, QueryResult, Warehouse};
use crate::config::{ClusterConfig, Config, SslMode};
use crate::load::{SourceStats, REJECTS_SHOWN};
use crate::parse::SourceKind;
use crate::progress::Progress;
use crate::record::Reject;
use crate::schema::Table;
use crate::sql::{self, Dialect, S3Copy};

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

    fn stage_from_s3(
        &mut self,
        config: &Config,
        max_errors: u64,
        progress: &Progress,
    ) -> Result<Vec<SourceStats>> {
        copy_staging_from_s3(self, config, max_errors, progress)
    }

    fn append(&mut self, table: &Table, _batch: &RecordBatch) -> Result<()> {
        not_appendable(table)
    }
}

/// Redshift's own COPY of both sources from `[S3]` with the role of `[IAM_ROLE]`, into the
/// emptied staging tables. The records it skipped (at most MAXERROR per source) are read back
/// from its load-error table into `load_errors`; a COPY that fails shows those rows.
pub(super) fn copy_staging_from_s3(
    warehouse: &mut dyn Warehouse,
    config: &Config,
    max_errors: u64,
    progress: &Progress,
) -> Result<Vec<SourceStats>> {
    let role = config.iam_role_arn.as_str();
    if role.is_empty() {
        bail!(
            "{}: [IAM_ROLE] ARN is empty: Redshift's COPY needs a role it can assume to read \
             the [S3] bucket: run iac_create, or set ARN to such a role",
            config.path.display()
        );
    }
    let s3 = config.s3_sources()?;
    let jsonpaths = s3.log_jsonpath.to_string();
    let serverless = config.cluster.is_serverless();
    let sources = [
        (
            SourceKind::Song,
            "SONG_DATA",
            s3.song_data.to_string(),
            "auto ignorecase",
        ),
        (
            SourceKind::Log,
            "LOG_DATA",
            s3.log_data.to_string(),
            jsonpaths.as_str(),
        ),
    ];
    let bar = progress.items("copy", sources.len() as u64);
    let mut all = Vec::new();
    for (kind, key, from, json) in sources {
        let copy = sql::copy_from_s3(&S3Copy {
            table: kind.table(),
            from: &from,
            iam_role: role,
            json,
            region: &config.s3.region,
            max_errors,
        })
        .map_err(|e| {
            anyhow!(
                "{}: a value of [S3] or [IAM_ROLE] cannot be used: {e}",
                config.path.display()
            )
        })?;
        bar.set_message(kind.table().name);
        tracing::info!(table = kind.table().name, %from, "Redshift COPY");
        if let Err(error) = warehouse.execute(&copy) {
            // The failed COPY aborted the transaction; its error rows outlive it.
            let _ = warehouse.rollback();
            let shown = match rejects(warehouse, kind, serverless) {
                Ok(rejects) if !rejects.is_empty() => rejects
                    .iter()
                    .take(20)
                    .map(|r| format!("  {}:{}: {}", r.file, r.line.unwrap_or(0), r.reason))
                    .collect::<Vec<_>>()
                    .join("\n"),
                _ => format!(
                    "  (no rows found; see {} for this session)",
                    sql::redshift_load_error_table(serverless)
                ),
            };
            return Err(error.context(format!(
                "Redshift's COPY of [S3] {key} = {from} into {} failed; nothing was committed. \
                 Load errors:\n{shown}\nFix the input, or raise [WAREHOUSE] MAX_ERRORS (or pass \
                 --max-errors) to skip bad records and keep them in load_errors",
                kind.table().name
            )));
        }
        let staged = warehouse
            .query(sql::REDSHIFT_LAST_COPY_COUNT)?
            .single_int()
            .unwrap_or_default() as u64;
        let rejects = rejects(warehouse, kind, serverless)?;
        if !rejects.is_empty() {
            warehouse.execute(&sql::insert_rejects_redshift(&rejects))?;
        }
        all.push(SourceStats {
            source: kind.name(),
            files: 0,
            bytes: 0,
            records: staged + rejects.len() as u64,
            staged,
            rejected: rejects.len() as u64,
            first_rejects: rejects.into_iter().take(REJECTS_SHOWN).collect(),
            read_by_warehouse: true,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(all)
}

/// The records Redshift's last COPY in this session skipped, as rejects.
fn rejects(
    warehouse: &mut dyn Warehouse,
    kind: SourceKind,
    serverless: bool,
) -> Result<Vec<Reject>> {
    let result = warehouse.query(sql::redshift_load_errors(serverless))?;
    // Columns: file, line, column, reason, raw line (see the query).
    Ok(result
        .rows
        .iter()
        .map(|row| {
            let text = |index: usize| row.get(index).map(Cell::to_string).unwrap_or_default();
            Reject {
                source: kind.name(),
                file: text(0),
                line: match row.get(1) {
                    Some(Cell::Int(line)) => u64::try_from(*line).ok(),
                    _ => None,
                },
                reason: format!("{}: {}", text(2), text(3)),
                raw_text: text(4),
            }
        })
        .collect())
}
