//! Arrow record batches: how staging rows travel from the parsers to an engine's bulk append.
//! A batch holds one typed array per column, built from the table definition in `schema`, so
//! every engine receives the same columnar data and only decides how to write it.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use arrow_array::builder::{
    Float64Builder, Int32Builder, Int64Builder, StringBuilder, TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field as ArrowField, Schema, TimeUnit};
use rayon::prelude::*;

use crate::record::{Field, Row};
use crate::schema::{ColumnType, Table};

/// Rows in one Arrow batch at most. Every text value is bounded by its column's width (2 KiB at
/// most), so a batch's text column stays far below the 2 GiB Arrow's string offsets can
/// address, whatever one file holds.
pub const BATCH_ROWS: usize = 65_536;

fn arrow_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::Text(_) => DataType::Utf8,
        ColumnType::Integer => DataType::Int32,
        ColumnType::BigInt => DataType::Int64,
        ColumnType::Double => DataType::Float64,
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, None),
    }
}

/// Column `index` of `rows` as one Arrow array of the column's type.
fn column_array(table: &Table, index: usize, rows: &[Row]) -> Result<ArrayRef> {
    let column = &table.columns[index];
    let mismatch = |field: &Field| {
        anyhow::anyhow!(
            "{}.{} is {:?} but a row holds {field:?}",
            table.name,
            column.name,
            column.ty
        )
    };
    macro_rules! numbers {
        ($builder:ty, $variant:ident, $convert:expr) => {{
            let mut builder = <$builder>::with_capacity(rows.len());
            for row in rows {
                match &row[index] {
                    Field::Null => builder.append_null(),
                    Field::$variant(v) => builder.append_value($convert(*v)?),
                    other => return Err(mismatch(other)),
                }
            }
            Arc::new(builder.finish()) as ArrayRef
        }};
    }
    let narrow = |v: i64| i32::try_from(v).context("integer out of range");
    Ok(match column.ty {
        ColumnType::Text(_) => {
            let mut builder = StringBuilder::with_capacity(rows.len(), rows.len() * 16);
            for row in rows {
                match &row[index] {
                    Field::Null => builder.append_null(),
                    Field::Text(s) => builder.append_value(s),
                    other => return Err(mismatch(other)),
                }
            }
            Arc::new(builder.finish())
        }
        ColumnType::Integer => numbers!(Int32Builder, Int, narrow),
        ColumnType::BigInt => numbers!(Int64Builder, Int, anyhow::Ok),
        ColumnType::Double => numbers!(Float64Builder, Float, anyhow::Ok),
        ColumnType::Timestamp => numbers!(TimestampMillisecondBuilder, Int, anyhow::Ok),
    })
}

/// The rows of `table` as one record batch, its columns built in parallel.
pub fn record_batch(table: &Table, rows: &[Row]) -> Result<RecordBatch> {
    if let Some(row) = rows.iter().find(|r| r.len() != table.columns.len()) {
        bail!(
            "a row for {} has {} values, not {}",
            table.name,
            row.len(),
            table.columns.len()
        );
    }
    let schema = Schema::new(
        table
            .columns
            .iter()
            .map(|c| ArrowField::new(c.name, arrow_type(c.ty), !c.required))
            .collect::<Vec<_>>(),
    );
    let arrays = (0..table.columns.len())
        .into_par_iter()
        .map(|i| column_array(table, i, rows))
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(Arc::new(schema), arrays)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::LOAD_ERRORS;
    use arrow_array::{Array, Int64Array, StringArray};

    #[test]
    fn rows_become_typed_columns_with_nulls() {
        let rows = vec![
            vec![
                Field::Text("log_data".into()),
                Field::Text("f.json".into()),
                Field::Int(3),
                Field::Text("bad".into()),
                Field::Null,
            ],
            vec![
                Field::Text("song_data".into()),
                Field::Text("g.json".into()),
                Field::Null,
                Field::Text("unreadable".into()),
                Field::Text("x".into()),
            ],
        ];
        let batch = record_batch(&LOAD_ERRORS, &rows).unwrap();
        assert_eq!(batch.num_rows(), 2);
        let lines = batch
            .column(2)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(lines.value(0), 3);
        assert!(lines.is_null(1));
        let raw = batch
            .column(4)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert!(raw.is_null(0));
        assert_eq!(raw.value(1), "x");
    }

    #[test]
    fn mismatched_rows_are_errors_not_panics() {
        let short = vec![vec![Field::Null]];
        assert!(record_batch(&LOAD_ERRORS, &short).is_err());
        let wrong = vec![vec![
            Field::Int(1),
            Field::Text("f".into()),
            Field::Null,
            Field::Text("r".into()),
            Field::Null,
        ]];
        let err = record_batch(&LOAD_ERRORS, &wrong).unwrap_err().to_string();
        assert!(err.contains("load_errors.source"), "{err}");
    }
}
