//! The `create_tables` step: drops every table the toolkit owns and creates it anew, empty.

use anyhow::{Context, Result};

use crate::schema::ALL_TABLES;
use crate::sql;
use crate::warehouse::Warehouse;

/// Drops and creates every table in one transaction; returns the table names.
pub fn create_tables(warehouse: &mut dyn Warehouse) -> Result<Vec<&'static str>> {
    let dialect = warehouse.dialect();
    warehouse.begin()?;
    let outcome = ALL_TABLES.iter().try_for_each(|table| {
        tracing::info!(table = table.name, "recreating");
        warehouse
            .execute(&sql::drop_table(table))
            .and_then(|_| warehouse.execute(&sql::create_table(table, dialect)))
            .with_context(|| format!("cannot create table {}", table.name))
    });
    match outcome {
        Ok(()) => warehouse.commit()?,
        Err(error) => {
            let _ = warehouse.rollback();
            return Err(error);
        }
    }
    Ok(ALL_TABLES.iter().map(|t| t.name).collect())
}
