//! The `analysis` step: runs the business questions against the warehouse and collects the
//! answers for rendering.

use anyhow::{Context, Result};

use crate::report::Answer;
use crate::sql::{analysis_query, AnalysisQuery, ANALYSIS_QUERIES};
use crate::warehouse::Warehouse;

/// Runs the named questions (all of them when `names` is empty), rankings cut to `limit` rows.
pub fn run(warehouse: &mut dyn Warehouse, names: &[String], limit: u32) -> Result<Vec<Answer>> {
    let queries: Vec<&AnalysisQuery> = if names.is_empty() {
        ANALYSIS_QUERIES.iter().collect()
    } else {
        names
            .iter()
            .map(|name| {
                analysis_query(name).with_context(|| {
                    format!("no question called {name:?}: see analysis --help for the names")
                })
            })
            .collect::<Result<_>>()?
    };
    queries
        .into_iter()
        .map(|query| {
            tracing::info!(query = query.name, "running");
            let result = warehouse
                .query(&query.sql(limit))
                .with_context(|| format!("question {} failed (run etl first?)", query.name))?;
            Ok(Answer {
                name: query.name,
                title: query.title,
                result,
            })
        })
        .collect()
}

/// The question names, for `--help` and argument checking.
pub fn query_names() -> Vec<&'static str> {
    ANALYSIS_QUERIES.iter().map(|q| q.name).collect()
}
