//! Which tables of the warehouse are the toolkit's own. A database may hold other tables (an
//! application's own `users`, say): the toolkit marks every table it creates with a comment
//! ([`sql::TABLE_MARK`]) and drops, empties or rewrites only tables it recognises as its own,
//! so `create_tables` and `etl` never touch anyone else's data. A table made by an earlier
//! release, before the mark, is recognised by its columns (exactly the toolkit's, in order)
//! and marked the next time either step runs.

use std::collections::HashMap;

use anyhow::{bail, Result};

use crate::schema::Table;
use crate::sql;
use crate::warehouse::{Cell, Warehouse};

/// What the warehouse holds under the name of one of the toolkit's tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// No table (or view) of that name in the warehouse's schema.
    Missing,
    /// The toolkit's table; `marked` is false for one made before tables were marked.
    Ours { marked: bool },
    /// A table or view of that name that the toolkit did not make: never dropped or written.
    Foreign,
}

/// One of the toolkit's table names and what holds it.
#[derive(Debug, Clone)]
pub struct TableState {
    pub table: &'static Table,
    pub ownership: Ownership,
}

/// Looks at what the warehouse holds under each of `tables`' names, in its current schema.
/// A warehouse that only prints statements (`--print-sql`) holds nothing.
pub fn inspect(
    warehouse: &mut dyn Warehouse,
    tables: &[&'static Table],
) -> Result<Vec<TableState>> {
    if warehouse.prints_only() {
        return Ok(tables
            .iter()
            .map(|table| TableState {
                table,
                ownership: Ownership::Missing,
            })
            .collect());
    }
    let dialect = warehouse.dialect();
    let mut comments: HashMap<String, Option<String>> = HashMap::new();
    for row in warehouse.query(&sql::table_marks(dialect, tables))?.rows {
        if let [Cell::Text(name), comment] = row.as_slice() {
            let comment = match comment {
                Cell::Text(text) => Some(text.clone()),
                _ => None,
            };
            comments.insert(name.clone(), comment);
        }
    }
    let unmarked: Vec<&Table> = tables
        .iter()
        .copied()
        .filter(|t| matches!(comments.get(t.name), Some(c) if !is_mark(c.as_deref())))
        .collect();
    let mut columns: HashMap<String, Vec<String>> = HashMap::new();
    if !unmarked.is_empty() {
        for row in warehouse.query(&sql::table_columns(&unmarked))?.rows {
            if let [Cell::Text(table), Cell::Text(column), ..] = row.as_slice() {
                columns
                    .entry(table.clone())
                    .or_default()
                    .push(column.to_ascii_lowercase());
            }
        }
    }
    Ok(tables
        .iter()
        .map(|table| {
            let ownership = match comments.get(table.name) {
                None => Ownership::Missing,
                Some(comment) if is_mark(comment.as_deref()) => Ownership::Ours { marked: true },
                Some(_) => {
                    let expected: Vec<&str> = table.column_names().collect();
                    let found = columns.get(table.name).map(Vec::as_slice).unwrap_or(&[]);
                    if found
                        .iter()
                        .map(String::as_str)
                        .eq(expected.iter().copied())
                    {
                        Ownership::Ours { marked: false }
                    } else {
                        Ownership::Foreign
                    }
                }
            };
            TableState { table, ownership }
        })
        .collect())
}

fn is_mark(comment: Option<&str>) -> bool {
    comment.is_some_and(|c| c.starts_with(sql::TABLE_MARK_PREFIX))
}

/// Fails, naming them, when any of `states` is a table the toolkit did not make: nothing may
/// be dropped or written there. Says how to keep the warehouse apart.
pub fn refuse_foreign(warehouse: &dyn Warehouse, states: &[TableState]) -> Result<()> {
    let foreign: Vec<&str> = states
        .iter()
        .filter(|s| s.ownership == Ownership::Foreign)
        .map(|s| s.table.name)
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    let apart = match warehouse.dialect() {
        sql::Dialect::DuckDb => "point [WAREHOUSE] DUCKDB_PATH at a file of its own".to_string(),
        _ => "keep the warehouse in a schema of its own with [WAREHOUSE] SCHEMA = sparkify \
              (made if absent), or point [CLUSTER] DB_NAME at another database"
            .to_string(),
    };
    bail!(
        "{} already holds {} the toolkit did not create: {} (not marked as the toolkit's, and \
         {} not the toolkit's columns); nothing was dropped or changed. To put the warehouse \
         beside {}, {apart}",
        warehouse.describe(),
        if foreign.len() == 1 {
            "a table"
        } else {
            "tables"
        },
        foreign.join(", "),
        if foreign.len() == 1 {
            "its columns are"
        } else {
            "their columns are"
        },
        if foreign.len() == 1 { "it" } else { "them" },
    )
}

/// Marks the toolkit's tables that were made before the mark existed (see [`inspect`]).
pub fn mark_unmarked(warehouse: &mut dyn Warehouse, states: &[TableState]) -> Result<()> {
    for state in states {
        if state.ownership == (Ownership::Ours { marked: false }) {
            warehouse.execute(&sql::mark_table(state.table))?;
        }
    }
    Ok(())
}

/// Makes a load's warehouse ready: refuses tables the toolkit did not make, creates (and
/// marks) those of `tables` that are missing, marks old unmarked ones, and commits that, so a
/// first `etl` needs no `create_tables`. Returns the names of the tables it created. A
/// warehouse that only prints statements is left alone.
pub fn prepare_for_load(
    warehouse: &mut dyn Warehouse,
    tables: &[&'static Table],
) -> Result<Vec<&'static str>> {
    if warehouse.prints_only() {
        return Ok(Vec::new());
    }
    let states = inspect(warehouse, tables)?;
    refuse_foreign(warehouse, &states)?;
    let missing: Vec<&'static Table> = states
        .iter()
        .filter(|s| s.ownership == Ownership::Missing)
        .map(|s| s.table)
        .collect();
    let unmarked = states
        .iter()
        .any(|s| s.ownership == (Ownership::Ours { marked: false }));
    if missing.is_empty() && !unmarked {
        return Ok(Vec::new());
    }
    let dialect = warehouse.dialect();
    warehouse.begin()?;
    let outcome = (|| -> Result<()> {
        for table in &missing {
            tracing::info!(table = table.name, "creating");
            warehouse.execute(&sql::create_table(table, dialect))?;
            warehouse.execute(&sql::mark_table(table))?;
            for index in sql::secondary_indexes(table, dialect) {
                warehouse.execute(&sql::create_index(&index))?;
            }
        }
        mark_unmarked(warehouse, &states)
    })();
    match outcome {
        Ok(()) => warehouse.commit()?,
        Err(error) => {
            let _ = warehouse.rollback();
            return Err(error.context("cannot create the warehouse's tables"));
        }
    }
    Ok(missing.iter().map(|t| t.name).collect())
}
