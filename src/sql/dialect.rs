//! The one place where SQL dialects differ: [`Dialect`] names each engine's types and supplies
//! the few expressions DuckDB, PostgreSQL and Redshift spell differently, and literals are
//! written here so that no value reaches a statement unescaped.

use crate::schema::ColumnType;

/// A SQL dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    DuckDb,
    Postgres,
    Redshift,
}

impl Dialect {
    /// The type of a column in this dialect's DDL.
    pub fn type_name(self, ty: ColumnType) -> String {
        match (self, ty) {
            (Dialect::DuckDb, ColumnType::Text(_)) => "VARCHAR".into(),
            // Byte order, as DuckDB's, whatever the database's collation: sorts and the
            // tie-breaks that pick among duplicate records agree on both engines. Widths are
            // enforced by the loader (in bytes, as Redshift counts them), not by the type.
            (Dialect::Postgres, ColumnType::Text(_)) => "TEXT COLLATE \"C\"".into(),
            // Redshift's VARCHAR(n) holds n bytes and its COPY rejects a longer value
            // (https://docs.aws.amazon.com/redshift/latest/dg/r_Character_types.html, "Storage
            // and ranges"). COLLATE CASE_SENSITIVE keeps joins, dedup and grouping exact in a
            // database created case-insensitive, whose columns otherwise inherit its collation
            // (https://docs.aws.amazon.com/redshift/latest/dg/r_CREATE_TABLE_NEW.html, "COLLATE").
            (Dialect::Redshift, ColumnType::Text(width)) => {
                format!("VARCHAR({width}) COLLATE CASE_SENSITIVE")
            }
            (_, ColumnType::Integer) => "INTEGER".into(),
            (_, ColumnType::BigInt) => "BIGINT".into(),
            (Dialect::DuckDb, ColumnType::Double) => "DOUBLE".into(),
            (Dialect::Postgres | Dialect::Redshift, ColumnType::Double) => {
                "DOUBLE PRECISION".into()
            }
            (_, ColumnType::Timestamp) => "TIMESTAMP".into(),
        }
    }

    /// Whether tables declare their primary and unique keys. DuckDB maintains an index for
    /// each declared key on every insert: on 1M events that made the transform 3x slower
    /// (songplays 4.0 s against 1.3 s), so there the keys are checked by the quality checks
    /// ([`crate::checks`]) after the transform instead. Redshift does not enforce declared keys
    /// but its planner uses them; the checks read them on every engine.
    pub fn declares_keys(self) -> bool {
        match self {
            Dialect::DuckDb => false,
            Dialect::Postgres | Dialect::Redshift => true,
        }
    }

    /// A TIMESTAMP (UTC) from epoch milliseconds.
    pub fn epoch_ms_to_timestamp(self, expr: &str) -> String {
        match self {
            Dialect::DuckDb => format!("epoch_ms({expr})"),
            // Milliseconds kept: the original's `ts / 1000 * INTERVAL '1 second'` dropped them.
            Dialect::Postgres | Dialect::Redshift => {
                format!("TIMESTAMP 'epoch' + {expr} * INTERVAL '1 millisecond'")
            }
        }
    }

    /// `a = b` for text, exact: trailing blanks count. Redshift disregards trailing blanks
    /// when it compares VARCHAR values but counts them in LENGTH
    /// (https://docs.aws.amazon.com/redshift/latest/dg/r_Character_types.html, "Significance
    /// of trailing blanks"), so there equal lengths make the comparison exact, as it is on
    /// DuckDB and PostgreSQL.
    pub fn text_equal(self, a: &str, b: &str) -> String {
        match self {
            Dialect::DuckDb | Dialect::Postgres => format!("{a} = {b}"),
            Dialect::Redshift => format!("({a} = {b} AND LENGTH({a}) = LENGTH({b}))"),
        }
    }

    /// The day of the timestamp `expression` as `YYYY-MM-DD` text: DuckDB's `strftime`
    /// (https://duckdb.org/docs/stable/sql/functions/dateformat), PostgreSQL's and Redshift's
    /// `TO_CHAR` (https://docs.aws.amazon.com/redshift/latest/dg/r_TO_CHAR.html, which returns
    /// VARCHAR; its example queries format `'YYYY-MM-DD'`, r_HLL-examples).
    pub fn day_text(self, expression: &str) -> String {
        match self {
            Dialect::DuckDb => format!("strftime({expression}, '%Y-%m-%d')"),
            Dialect::Postgres | Dialect::Redshift => {
                format!("TO_CHAR({expression}, 'YYYY-MM-DD')")
            }
        }
    }

    /// A text key in PARTITION BY, GROUP BY or a DISTINCT list: its values kept apart exactly.
    /// Redshift would put `'SOX'` and `'SOX '` in one group (see [`Dialect::text_equal`]);
    /// their lengths differ, so grouping by the length too keeps them apart, as the other
    /// engines do.
    pub fn text_key(self, column: &str) -> String {
        match self {
            Dialect::DuckDb | Dialect::Postgres => column.to_string(),
            Dialect::Redshift => format!("{column}, LENGTH({column})"),
        }
    }

    /// A text column as a tie-break in ORDER BY, nulls last. On Redshift, values that differ
    /// only by trailing blanks compare equal (see [`Dialect::text_equal`]); ordering them by
    /// LENGTH next puts the shorter first, as byte order does on the other engines.
    pub fn text_order(self, column: &str) -> String {
        self.text_order_with(column, " NULLS LAST")
    }

    /// [`Dialect::text_order`] with `nulls` (" NULLS LAST", or "" for the engine's default).
    pub fn text_order_with(self, column: &str, nulls: &str) -> String {
        match self {
            Dialect::DuckDb | Dialect::Postgres => format!("{column}{nulls}"),
            Dialect::Redshift => format!("{column}{nulls}, LENGTH({column})"),
        }
    }
}

/// A string literal for Redshift, where a backslash escapes as well as a doubled quote. Config
/// values (role ARN, S3 URIs, region) reach SQL only through here; control characters, which
/// no such value holds, are refused rather than escaped.
pub fn redshift_literal(value: &str) -> Result<String, String> {
    if value.chars().any(char::is_control) {
        return Err(format!("{value:?} holds a control character"));
    }
    Ok(format!(
        "'{}'",
        value.replace('\\', "\\\\").replace('\'', "''")
    ))
}

/// A text literal in `dialect`. DuckDB and PostgreSQL (standard_conforming_strings, on by
/// default since 9.1) escape only the quote; Redshift a backslash too, and there control
/// characters become spaces as in [`insert_rows_redshift`], so a name matches the row those
/// statements inserted.
pub fn text_literal(dialect: Dialect, value: &str) -> String {
    match dialect {
        Dialect::DuckDb | Dialect::Postgres => format!("'{}'", value.replace('\'', "''")),
        Dialect::Redshift => {
            let clean: String = value
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            redshift_literal(&clean).unwrap_or_else(|_| "''".into())
        }
    }
}
