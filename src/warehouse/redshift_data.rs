//! Amazon Redshift through the Redshift Data API: the same SQL as the redshift engine, sent
//! over HTTPS with IAM credentials, so no port needs to be open. Each statement is submitted
//! with ExecuteStatement, its status polled with DescribeStatement (backing off), and rows read
//! with GetStatementResult page by page. All statements of one run share a Data API session, so
//! BEGIN ... COMMIT spans them as on a connection.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use arrow_array::RecordBatch;
use aws_sdk_redshiftdata::types::{Field, StatusString};
use aws_sdk_redshiftdata::Client;
use tokio::runtime::Runtime;

use super::s3_copy::S3Load;
use super::{first_line, not_appendable, Cell, QueryResult, Warehouse};
use crate::aws::explain;
use crate::config::Config;
use crate::progress::Progress;
use crate::schema::Table;
use crate::sql::{self, Dialect};
use crate::stats::SourceStats;

/// Where the statements go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A Redshift Serverless workgroup.
    Workgroup(String),
    /// A provisioned cluster, as a database user (temporary credentials from IAM).
    Cluster { identifier: String, db_user: String },
}

impl Target {
    /// The target `dwh.cfg` names: `[DWH] DWH_CLUSTER_IDENTIFIER` (as `[CLUSTER] DB_USER`) when
    /// set, else the workgroup `DWH_WORKGROUP_NAME`.
    pub fn of(config: &Config) -> Target {
        if config.dwh.cluster_identifier.is_empty() {
            Target::Workgroup(config.dwh.workgroup.clone())
        } else {
            Target::Cluster {
                identifier: config.dwh.cluster_identifier.clone(),
                db_user: config.cluster.db_user.clone(),
            }
        }
    }

    /// Whether the target keeps the STL tables: a provisioned cluster does; a workgroup is
    /// Serverless, which refuses queries of them.
    pub fn keeps_stl_tables(&self) -> bool {
        matches!(self, Target::Cluster { .. })
    }
}

/// How the status of a statement is polled.
#[derive(Debug, Clone, Copy)]
pub struct Polling {
    pub first: Duration,
    pub max: Duration,
    /// Longest a statement may run.
    pub timeout: Duration,
    /// How long the Data API keeps the session after a statement finishes, waiting for the
    /// next ("SessionKeepAliveSeconds": "the number of seconds to keep the session alive after
    /// the query finishes",
    /// https://docs.aws.amazon.com/redshift-data/latest/APIReference/API_ExecuteStatement.html).
    /// Between two statements a load may work on S3 for minutes (listing, coalescing, writing
    /// manifests), sending nothing: [`Warehouse::keep_alive`] refreshes the session during that
    /// work, and the window is long enough for any one step of it. A run killed
    /// mid-transaction holds its locks until the session ends: at most this long.
    pub session_keep_alive: Duration,
}

impl Default for Polling {
    fn default() -> Self {
        Polling {
            first: Duration::from_millis(100),
            max: Duration::from_secs(5),
            timeout: Duration::from_secs(3 * 3600),
            session_keep_alive: Duration::from_secs(15 * 60),
        }
    }
}

pub struct RedshiftDataWarehouse {
    runtime: Runtime,
    client: Client,
    target: Target,
    database: String,
    polling: Polling,
    /// The Data API session of this run, once the first statement opened it.
    session: Option<String>,
    /// When the last statement of the session finished (the keep-alive counts from there).
    last_finished: Option<std::time::Instant>,
    /// Set when the Data API opened no session: every later statement is refused, as it would
    /// run outside the run's transaction.
    sessionless: bool,
}

impl RedshiftDataWarehouse {
    /// The warehouse `dwh.cfg` names: `[DWH] DWH_WORKGROUP_NAME` (or `DWH_CLUSTER_IDENTIFIER`
    /// with `[CLUSTER] DB_USER`), database `[CLUSTER] DB_NAME`, AWS settings as in
    /// [`crate::aws`].
    pub fn connect(config: &Config) -> Result<Self> {
        let runtime = runtime()?;
        let sdk = runtime.block_on(crate::aws::sdk_config(config, None));
        // Found missing here, the credentials are said to be missing, not a statement to fail.
        if let Some(problem) = runtime.block_on(crate::aws::credentials_problem(&sdk)) {
            bail!("the redshift-data engine signs its requests with AWS credentials: {problem}");
        }
        let target = Target::of(config);
        if config.cluster.db_name.is_empty() {
            bail!(
                "{}: [CLUSTER] DB_NAME is empty: the redshift-data engine needs the database name",
                config.path.display()
            );
        }
        Ok(Self::with_client(
            runtime,
            Client::new(&sdk),
            target,
            config.cluster.db_name.clone(),
            Polling::default(),
        ))
    }

    /// A warehouse over an existing client (tests pass a mocked one).
    pub fn with_client(
        runtime: Runtime,
        client: Client,
        target: Target,
        database: String,
        polling: Polling,
    ) -> Self {
        // Ctrl-C: the statement being polled is cancelled by the poll loop itself (see `wait`);
        // registering says a warehouse is open, so the run is interrupted, not killed.
        crate::interrupt::on_interrupt(|| {});
        RedshiftDataWarehouse {
            runtime,
            client,
            target,
            database,
            polling,
            session: None,
            last_finished: None,
            sessionless: false,
        }
    }

    /// Submits `sql` and waits until it ends; returns the statement id and whether it has rows.
    fn run(&mut self, sql: &str) -> Result<(String, bool)> {
        super::stop_if_interrupted(sql)?;
        if self.sessionless {
            if sql == sql::ROLLBACK {
                // Nothing ran in a transaction of this run: nothing to roll back (the first
                // statement's own session ends by itself).
                return Ok((String::new(), false));
            }
            bail!(
                "not sent: the Data API opened no session for this run's first statement, so \
                 this one would run outside its transaction"
            );
        }
        super::log_statement("redshift-data", sql);
        let client = self.client.clone();
        let mut request = client.execute_statement().sql(sql);
        request = match &self.session {
            Some(session) => request.session_id(session),
            None => {
                let request = request.database(&self.database).session_keep_alive_seconds(
                    i32::try_from(self.polling.session_keep_alive.as_secs())
                        .unwrap_or(i32::MAX)
                        .max(1),
                );
                match &self.target {
                    Target::Workgroup(name) => request.workgroup_name(name),
                    Target::Cluster {
                        identifier,
                        db_user,
                    } => request.cluster_identifier(identifier).db_user(db_user),
                }
            }
        };
        let context = || format!("Redshift Data API failed on: {}", first_line(sql));
        let submitted = self
            .runtime
            .block_on(request.send())
            .map_err(|e| anyhow!("{}", explain(&e)))
            .with_context(context)?;
        if self.session.is_none() {
            // Without a session id every later statement would open a session of its own:
            // BEGIN would protect nothing and each DELETE would commit alone. ExecuteStatement
            // answers SessionId when SessionKeepAliveSeconds was asked
            // (https://docs.aws.amazon.com/redshift-data/latest/APIReference/API_ExecuteStatement.html,
            // "SessionId" in the response).
            let Some(session) = submitted.session_id().filter(|s| !s.is_empty()) else {
                // The statement itself (the first: BEGIN or a read) runs alone; nothing else
                // is sent.
                self.sessionless = true;
                bail!(
                    "the Data API opened no session for the first statement (its answer holds no \
                     SessionId), so the statements of this run could not share a transaction: \
                     nothing else was sent. Check that the workgroup or cluster supports Data API \
                     sessions, and run again"
                );
            };
            self.session = Some(session.to_string());
        }
        let id = submitted
            .id()
            .ok_or_else(|| anyhow!("the Data API returned no statement id"))
            .with_context(context)?
            .to_string();
        let waited = self.wait(&id, sql);
        self.last_finished = Some(std::time::Instant::now());
        let has_rows = waited.with_context(context)?;
        Ok((id, has_rows))
    }

    /// Polls DescribeStatement, backing off, until the statement finishes.
    fn wait(&self, id: &str, sql: &str) -> Result<bool> {
        let polling = self.polling;
        let client = self.client.clone();
        self.runtime.block_on(async move {
            let start = std::time::Instant::now();
            let mut pause = polling.first;
            loop {
                let described = client
                    .describe_statement()
                    .id(id)
                    .send()
                    .await
                    .map_err(|e| anyhow!("{}", explain(&e)))?;
                match described.status() {
                    Some(StatusString::Finished) => {
                        return Ok(described.has_result_set().unwrap_or(false))
                    }
                    Some(StatusString::Failed) | Some(StatusString::Aborted) => bail!(
                        "the statement {}: {} (statement: {})",
                        described
                            .status()
                            .map(|s| s.as_str().to_ascii_lowercase())
                            .unwrap_or_default(),
                        described.error().unwrap_or("no reason given"),
                        first_line(sql)
                    ),
                    _ => {}
                }
                if crate::interrupt::requested() {
                    // Ctrl-C: the statement is cancelled, and the run rolls back
                    // (https://docs.aws.amazon.com/redshift-data/latest/APIReference/API_CancelStatement.html).
                    if let Err(e) = client.cancel_statement().id(id).send().await {
                        eprintln!("could not cancel the running statement: {}", explain(&e));
                    }
                    return Err(crate::interrupt::Interrupted.into());
                }
                if start.elapsed() > polling.timeout {
                    // Left alone it would go on running, billing and holding its locks: it is
                    // cancelled first
                    // (https://docs.aws.amazon.com/redshift-data/latest/APIReference/API_CancelStatement.html).
                    let cancelled = match client.cancel_statement().id(id).send().await {
                        Ok(_) => "it was cancelled".to_string(),
                        Err(e) => format!(
                            "cancelling it failed ({}): cancel statement {id} yourself",
                            explain(&e)
                        ),
                    };
                    bail!(
                        "the statement ran longer than {} s, the longest this run waits; {cancelled}",
                        polling.timeout.as_secs()
                    );
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(polling.max);
            }
        })
    }

    /// Reads every page of a finished statement's rows.
    fn rows(&self, id: &str) -> Result<QueryResult> {
        let client = self.client.clone();
        self.runtime.block_on(async move {
            let mut result = QueryResult::default();
            let mut token: Option<String> = None;
            loop {
                let page = client
                    .get_statement_result()
                    .id(id)
                    .set_next_token(token.clone())
                    .send()
                    .await
                    .map_err(|e| anyhow!("{}", explain(&e)))?;
                if result.columns.is_empty() {
                    result.columns = page
                        .column_metadata()
                        .iter()
                        .map(|c| c.name().unwrap_or_default().to_string())
                        .collect();
                }
                for record in page.records() {
                    result.rows.push(record.iter().map(cell).collect());
                }
                token = page.next_token().map(str::to_string);
                if token.is_none() {
                    return Ok(result);
                }
            }
        })
    }
}

fn runtime() -> Result<Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the AWS client runtime")
}

fn cell(field: &Field) -> Cell {
    match field {
        Field::LongValue(v) => Cell::Int(*v),
        Field::DoubleValue(v) => Cell::Float(*v),
        Field::BooleanValue(v) => Cell::Int(i64::from(*v)),
        Field::StringValue(v) => Cell::Text(v.clone()),
        _ => Cell::Null,
    }
}

impl Warehouse for RedshiftDataWarehouse {
    /// Sends a statement that changes nothing on the session once a third of its keep-alive
    /// has passed since the last one finished, so the session, its transaction, its locks and
    /// its TEMP tables outlast the S3 work between two statements.
    fn keep_alive(&mut self) -> Result<()> {
        let due = match (&self.session, self.last_finished) {
            (Some(_), Some(finished)) => finished.elapsed() >= self.polling.session_keep_alive / 3,
            _ => false,
        };
        if due {
            self.run(sql::KEEP_SESSION_ALIVE)?;
        }
        Ok(())
    }

    fn describe(&self) -> String {
        match &self.target {
            Target::Workgroup(name) => {
                format!("redshift-data workgroup {name}/{}", self.database)
            }
            Target::Cluster { identifier, .. } => {
                format!("redshift-data cluster {identifier}/{}", self.database)
            }
        }
    }

    fn dialect(&self) -> Dialect {
        Dialect::Redshift
    }

    /// Unknown when the request got no answer (the SDK's dispatch failure or timeout, in the
    /// words [`crate::aws::explain`] gives them); a statement the Data API reports FAILED was
    /// refused and rolled back.
    fn commit_outcome_unknown(&self, error: &anyhow::Error) -> bool {
        let text = format!("{error:#}");
        ["dispatch failure", "timed out", "timeout", "connection"]
            .iter()
            .any(|sign| text.contains(sign))
    }

    fn execute(&mut self, sql: &str) -> Result<()> {
        self.run(sql).map(|_| ())
    }

    fn query(&mut self, sql: &str) -> Result<QueryResult> {
        let (id, has_rows) = self.run(sql)?;
        if !has_rows {
            return Ok(QueryResult::default());
        }
        self.rows(&id).with_context(|| {
            format!(
                "Redshift Data API failed reading the rows of: {}",
                first_line(sql)
            )
        })
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
        let provisioned = self.target.keeps_stl_tables();
        super::s3_copy::copy_staging_listed_now(self, config, load, provisioned, progress)
    }

    fn append(&mut self, table: &Table, _batch: &RecordBatch) -> Result<()> {
        not_appendable(table)
    }

    fn insert_rows(&mut self, table: &Table, rows: &[crate::record::Row]) -> Result<()> {
        super::insert_as_statements(self, table, rows)
    }
}
