//! Every SQL statement the toolkit runs, one file per concern: [`dialect`] (where the dialects
//! differ), [`session`] (transactions, locks, settings), [`ddl`], [`staging`] (COPY, rejects,
//! the ledger), [`transform`], [`merge`] (incremental loads), [`quality`] (the checks' queries)
//! and [`analysis`]; every name is reachable as `sql::NAME`. DDL is generated from the table
//! definitions in `schema`; the transform and the analysis queries are written once in SQL that
//! DuckDB, PostgreSQL and Redshift share, with the few dialect-specific expressions supplied by
//! [`Dialect`].
//!
//! Determinism: every `ROW_NUMBER()` that picks a winner among several source records orders by
//! enough columns to make the choice total, with explicit `NULLS LAST`, so the same input gives
//! the same rows on every engine and in any file order.

mod analysis;
mod ddl;
mod dialect;
mod merge;
mod quality;
mod session;
mod staging;
#[cfg(test)]
mod tests;
mod transform;

pub use analysis::*;
pub use ddl::*;
pub use dialect::*;
pub use merge::*;
pub use quality::{
    check_answer_width, check_counts, checked_rows, is_row_check, offending_rows, prepare_checks,
    row_check_counts, CheckScope, CheckedRows, SAMPLE_ROWS,
};
pub use session::*;
pub use staging::*;
pub use transform::*;
