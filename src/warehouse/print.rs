//! `--print-sql`: a warehouse that sends nothing and writes down every statement a step would
//! send to the chosen engine, in order, as `terraform plan` or `dbt compile` show what will
//! run. It touches no network (not the warehouse, not S3, not the Data API); where a statement
//! depends on what only the run can know (what S3 holds, the id of a COPY), a SQL comment
//! says so. Its queries answer as a fresh, clean warehouse would, so the step goes down its
//! ordinary path.

use anyhow::Result;
use arrow_array::RecordBatch;

use super::s3_copy::{copy_staging_from_s3, Listing, S3Load};
use super::{Cell, QueryResult, Target, Warehouse};
use crate::config::{Config, EngineChoice};
use crate::parse::SourceKind;
use crate::progress::Progress;
use crate::schema::{Table, ALL_TABLES, LOAD_ERRORS, STAGING_EVENTS, STAGING_SONGS};
use crate::sql::{self, Dialect};
use crate::stats::SourceStats;

pub struct SqlPrinter {
    engine: EngineChoice,
    /// Whether the target keeps `stl_load_errors` (see the Redshift engines).
    provisioned: bool,
    statements: Vec<String>,
}

impl SqlPrinter {
    /// A printer for the engine `config` selects.
    pub fn new(config: &Config) -> SqlPrinter {
        let engine = config.engine();
        // As the Redshift engines decide it from their targets.
        let provisioned = match engine {
            EngineChoice::RedshiftData => Target::of(config).keeps_stl_tables(),
            _ => config.cluster.is_provisioned_redshift(),
        };
        SqlPrinter {
            engine,
            provisioned,
            statements: Vec::new(),
        }
    }

    /// Everything recorded, as a SQL script: each statement ends with `;`, comments stand
    /// alone.
    pub fn script(&self) -> String {
        let mut out = format!(
            "-- the statements sent to the {} engine, in order; nothing was sent\n",
            self.engine.name()
        );
        for statement in &self.statements {
            out.push('\n');
            out.push_str(statement);
            if !statement.starts_with("--") {
                out.push(';');
            }
            out.push('\n');
        }
        out
    }

    /// How the local engines receive rows: PostgreSQL's COPY from the client, DuckDB's
    /// appender (no SQL).
    fn append_statement(&mut self, table: &Table) {
        match self.dialect() {
            Dialect::Postgres => self.statements.push(sql::copy_from_stdin(table)),
            _ => self.statements.push(format!(
                "-- {}: rows appended in Arrow batches through DuckDB's appender",
                table.name
            )),
        }
    }
}

impl Warehouse for SqlPrinter {
    fn describe(&self) -> String {
        format!("{} (statements printed, none sent)", self.engine.name())
    }

    fn dialect(&self) -> Dialect {
        match self.engine {
            EngineChoice::Postgres => Dialect::Postgres,
            EngineChoice::Redshift | EngineChoice::RedshiftData => Dialect::Redshift,
            EngineChoice::DuckDb | EngineChoice::Auto => Dialect::DuckDb,
        }
    }

    fn execute(&mut self, sql: &str) -> Result<()> {
        self.statements.push(sql.to_string());
        Ok(())
    }

    /// Answers as a warehouse after `create_tables` would: every table there, no rows, no
    /// failing check, a COPY that skipped nothing.
    fn query(&mut self, sql: &str) -> Result<QueryResult> {
        self.statements.push(sql.to_string());
        let copy_outcome = [&STAGING_SONGS, &STAGING_EVENTS]
            .iter()
            .any(|table| sql == sql::redshift_copy_outcome(table));
        let rows = if sql == sql::existing_tables(&ALL_TABLES) {
            ALL_TABLES
                .iter()
                .map(|t| vec![Cell::Text(t.name.to_string())])
                .collect()
        } else if copy_outcome {
            // query id, rows loaded, errors, status
            vec![vec![
                Cell::Int(0),
                Cell::Int(0),
                Cell::Int(0),
                Cell::Text("completed".into()),
            ]]
        } else if sql == sql::REDSHIFT_RAW_LINES || sql.contains("FROM sys_load_error_detail") {
            Vec::new()
        } else if let Some(width) = sql::check_answer_width(sql) {
            // A check: rows examined, then one failure count per check.
            vec![vec![Cell::Int(0); width]]
        } else {
            // Counts, and the other quality checks' rows examined and failing.
            vec![vec![Cell::Int(0), Cell::Int(0)]]
        };
        Ok(QueryResult {
            columns: Vec::new(),
            rows,
        })
    }

    fn note(&mut self, comment: &str) {
        self.statements.push(comment.to_string());
    }

    fn prints_only(&self) -> bool {
        true
    }

    /// Every engine is shown staging without reading anything: the Redshift engines by their
    /// COPY, the local ones by how the tool sends the rows it reads.
    fn stages_from_s3(&self) -> bool {
        true
    }

    fn stage_from_s3(
        &mut self,
        config: &Config,
        load: &S3Load,
        progress: &Progress,
    ) -> Result<Vec<SourceStats>> {
        if self.dialect() == Dialect::Redshift {
            let provisioned = self.provisioned;
            return copy_staging_from_s3(
                self,
                config,
                load,
                provisioned,
                Listing::Offline,
                progress,
            );
        }
        let sources = config.sources()?;
        for (kind, setting, location) in [
            (SourceKind::Song, "SONG_DATA", &sources.song_data),
            (SourceKind::Log, "LOG_DATA", &sources.log_data),
        ] {
            self.note(&format!(
                "-- {}: the records the tool reads from every .json file under [{}] {setting} = \
                 {location}",
                kind.table().name,
                sources.section
            ));
            self.append_statement(kind.table());
        }
        self.note("-- load_errors: the records rejected, with file, line and reason");
        self.append_statement(&LOAD_ERRORS);
        Ok(vec![
            SourceStats {
                source: SourceKind::Song.name(),
                ..SourceStats::default()
            },
            SourceStats {
                source: SourceKind::Log.name(),
                ..SourceStats::default()
            },
        ])
    }

    fn append(&mut self, table: &Table, _batch: &RecordBatch) -> Result<()> {
        self.append_statement(table);
        Ok(())
    }
}
