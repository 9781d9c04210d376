//! The `analysis` step: runs the business questions against the warehouse and collects the
//! answers for rendering.

use anyhow::{Context, Result};

use crate::report::Answer;
use crate::sql::{analysis_query, AnalysisQuery, ANALYSIS_QUERIES};
use crate::warehouse::Warehouse;

/// Warns (on stderr, unless `-q`) when the warehouse holds no plays: a fresh one answers
/// every question with nothing, and `etl` is what fills it.
pub fn say_if_empty(warehouse: &mut dyn Warehouse) -> Result<()> {
    let plays = warehouse
        .query(&crate::sql::count_rows(&crate::schema::SONGPLAYS))?
        .expect_int("the count of songplays")?;
    if plays == 0 {
        tracing::warn!(
            "{} holds no plays yet: run etl to fill it",
            warehouse.describe()
        );
    }
    Ok(())
}

/// The named questions: all of them when `names` is empty; each once, in the order first
/// named; an unknown name is an error.
pub fn questions(names: &[String]) -> Result<Vec<&'static AnalysisQuery>> {
    let mut queries: Vec<&'static AnalysisQuery> = Vec::new();
    if names.is_empty() {
        queries.extend(ANALYSIS_QUERIES.iter());
    }
    for name in names {
        let query = analysis_query(name).with_context(|| {
            format!("no question called {name:?}: see analysis --help for the names")
        })?;
        if !queries.iter().any(|q| q.name == query.name) {
            queries.push(query);
        }
    }
    Ok(queries)
}

/// Runs the named questions (see [`questions`]), rankings cut to `limit` rows.
pub fn run(warehouse: &mut dyn Warehouse, names: &[String], limit: u32) -> Result<Vec<Answer>> {
    questions(names)?
        .into_iter()
        .map(|query| {
            tracing::info!(query = query.name, "running");
            warehouse.note(&format!("-- {}: {}", query.name, query.title));
            let result = warehouse
                .query(&query.sql(warehouse.dialect(), limit))
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
