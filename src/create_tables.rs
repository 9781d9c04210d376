//! The `create_tables` step: start over. Drops every table the toolkit owns and creates it
//! anew, empty and marked as the toolkit's (see [`crate::ownership`]). A table of the same
//! name that the toolkit did not make is never dropped: the step refuses and changes nothing.
//! Tables that hold rows are dropped only with the caller's consent (`--yes`, or an answer on
//! a terminal), and the step says what it dropped.

use anyhow::{bail, Context, Result};

use crate::ownership::{self, Ownership};
use crate::schema::ALL_TABLES;
use crate::sql;
use crate::warehouse::Warehouse;

/// Asked with the tables that hold rows, and how many each holds: may they be dropped?
pub type Consent<'a> = dyn FnMut(&[(&'static str, i64)]) -> Result<bool> + 'a;

/// What `create_tables` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recreated {
    /// Every table created, in order.
    pub tables: Vec<&'static str>,
    /// The tables that existed and were dropped, with the rows each held.
    pub dropped: Vec<(&'static str, i64)>,
}

/// Drops and creates every table in one transaction. `consent` is asked, with the tables
/// that hold rows and their counts, before any of them is dropped; false leaves the warehouse
/// as it was.
pub fn create_tables(warehouse: &mut dyn Warehouse, consent: &mut Consent) -> Result<Recreated> {
    let dialect = warehouse.dialect();
    warehouse.begin()?;
    let outcome = (|| -> Result<Recreated> {
        let states = ownership::inspect(warehouse, &ALL_TABLES)?;
        ownership::refuse_foreign(warehouse, &states)?;
        let mut existing = Vec::new();
        for state in &states {
            if matches!(state.ownership, Ownership::Ours { .. }) {
                let rows = warehouse
                    .query(&sql::count_rows(state.table))?
                    .expect_int(&format!("the count of {}", state.table.name))?;
                existing.push((state.table.name, rows));
            }
        }
        let holding: Vec<(&'static str, i64)> = existing
            .iter()
            .copied()
            .filter(|(_, rows)| *rows > 0)
            .collect();
        if !holding.is_empty() && !consent(&holding)? {
            bail!("nothing was dropped: the tables and their rows are as they were");
        }
        for table in ALL_TABLES {
            tracing::info!(table = table.name, "recreating");
            warehouse
                .execute(&sql::drop_table(table))
                .and_then(|_| warehouse.execute(&sql::create_table(table, dialect)))
                .and_then(|_| warehouse.execute(&sql::mark_table(table)))
                .and_then(|_| {
                    for index in sql::secondary_indexes(table, dialect) {
                        warehouse.execute(&sql::create_index(&index))?;
                    }
                    Ok(())
                })
                .with_context(|| format!("cannot create table {}", table.name))?;
        }
        Ok(Recreated {
            tables: ALL_TABLES.iter().map(|t| t.name).collect(),
            dropped: existing,
        })
    })();
    match outcome {
        Ok(recreated) => {
            warehouse.commit()?;
            Ok(recreated)
        }
        Err(error) => {
            let _ = warehouse.rollback();
            Err(error)
        }
    }
}

/// `songplays (6,820 rows), users (96 rows)`.
pub fn describe_rows(tables: &[(&str, i64)]) -> String {
    let shown: Vec<String> = tables
        .iter()
        .map(|(name, rows)| {
            format!(
                "{name} ({} row{})",
                crate::words::thousands(*rows),
                if *rows == 1 { "" } else { "s" }
            )
        })
        .collect();
    shown.join(", ")
}
