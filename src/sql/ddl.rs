//! Creating and recognising the toolkit's tables: DDL generated from [`crate::schema`], the mark
//! every table it creates carries, and the catalogue queries that tell its tables from a
//! stranger's.

use crate::schema::{ColumnType, Table};

use super::{loaded_by_copy, Dialect};

pub fn drop_table(table: &Table) -> String {
    format!("DROP TABLE IF EXISTS {}", table.name)
}

pub fn create_table(table: &Table, dialect: Dialect) -> String {
    let mut lines: Vec<String> = table
        .columns
        .iter()
        .map(|c| {
            let null = if c.required { " NOT NULL" } else { "" };
            let ty = match c.ty {
                ColumnType::Text(width)
                    if dialect == Dialect::Redshift && loaded_by_copy(table) =>
                {
                    ColumnType::Text(width + 1)
                }
                other => other,
            };
            format!("    {} {}{null}", c.name, dialect.type_name(ty))
        })
        .collect();
    if dialect.declares_keys() {
        if !table.primary_key.is_empty() {
            let key = table.primary_key.join(", ");
            lines.push(format!("    PRIMARY KEY ({key})"));
        }
        if !table.unique.is_empty() {
            lines.push(format!("    UNIQUE ({})", table.unique.join(", ")));
        }
    }
    let mut ddl = format!("CREATE TABLE {} (\n{}\n)", table.name, lines.join(",\n"));
    if dialect == Dialect::Redshift {
        ddl.push_str(redshift_layout(table));
    }
    ddl
}

/// How Redshift spreads and orders each table over its slices, chosen for the transform and the
/// analysis queries:
/// - `users`, `songs`, `artists` are small dimensions: `DISTSTYLE ALL` puts a copy on every
///   node, so joining the fact to them never moves fact rows; sorted on their key for the joins.
/// - `songplays` and `time` grow together (one `time` row per distinct play time) and every
///   time-based question joins them on `start_time`: both are distributed and sorted on it, so
///   that join is co-located and a merge join, and time-range filters skip blocks.
/// - staging is read once by the transform: `DISTSTYLE EVEN` spreads the COPY evenly.
pub fn redshift_layout(table: &Table) -> &'static str {
    match table.name {
        "users" => "\nDISTSTYLE ALL SORTKEY (user_id)",
        "songs" => "\nDISTSTYLE ALL SORTKEY (song_id)",
        "artists" => "\nDISTSTYLE ALL SORTKEY (artist_id)",
        "songplays" | "time" => "\nDISTKEY (start_time) SORTKEY (start_time)",
        _ => "\nDISTSTYLE EVEN",
    }
}

/// The comment every table the toolkit creates carries (see [`crate::ownership`]), so a
/// database that holds other tables too never has them dropped or emptied by the toolkit.
pub const TABLE_MARK: &str =
    "sparkify warehouse toolkit: made by create_tables or etl, dropped and rewritten by them";

/// What a comment starts with when the toolkit wrote it.
pub const TABLE_MARK_PREFIX: &str = "sparkify warehouse toolkit";

/// Marks `table` as the toolkit's. COMMENT ON TABLE is PostgreSQL's
/// (https://www.postgresql.org/docs/15/sql-comment.html), DuckDB's
/// (https://duckdb.org/docs/stable/sql/statements/comment_on) and Redshift's
/// (https://docs.aws.amazon.com/redshift/latest/dg/r_COMMENT.html: "the owner of a database
/// object" may comment on it, as the toolkit is of the tables it creates).
pub fn mark_table(table: &Table) -> String {
    format!("COMMENT ON TABLE {} IS '{TABLE_MARK}'", table.name)
}

/// Each table or view of the current schema named as one of `tables`, with its comment
/// (NULL when it has none): name, comment. Redshift reads comments with `obj_description`, as
/// its COMMENT page shows (`select obj_description('public.sales'::regclass)`,
/// https://docs.aws.amazon.com/redshift/latest/dg/r_COMMENT.html); PostgreSQL names the
/// catalog too, its non-deprecated form
/// (https://www.postgresql.org/docs/15/functions-info.html#FUNCTIONS-INFO-COMMENT).
pub fn table_marks(dialect: Dialect, tables: &[&Table]) -> String {
    let names = quoted_names(tables);
    match dialect {
        Dialect::DuckDb => format!(
            "SELECT t.table_name, d.comment FROM information_schema.tables t \
             LEFT JOIN duckdb_tables() d ON d.database_name = t.table_catalog \
             AND d.schema_name = t.table_schema AND d.table_name = t.table_name \
             WHERE t.table_catalog = current_database() AND t.table_schema = current_schema() \
             AND t.table_name IN ({names})"
        ),
        Dialect::Postgres | Dialect::Redshift => {
            let comment = if dialect == Dialect::Postgres {
                "obj_description(c.oid, 'pg_class')"
            } else {
                "obj_description(c.oid)"
            };
            format!(
                "SELECT c.relname, {comment} FROM pg_catalog.pg_class c \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'f') \
                 AND c.relname IN ({names})"
            )
        }
    }
}

/// The columns of `tables` in the current schema, in order: table, column.
pub fn table_columns(tables: &[&Table]) -> String {
    format!(
        "SELECT table_name, column_name FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name IN ({}) \
         ORDER BY table_name, ordinal_position",
        quoted_names(tables)
    )
}

fn quoted_names(tables: &[&Table]) -> String {
    let names: Vec<String> = tables.iter().map(|t| format!("'{}'", t.name)).collect();
    names.join(", ")
}

/// Names of the given tables that exist, one per row.
pub fn existing_tables(tables: &[&Table]) -> String {
    let names: Vec<String> = tables.iter().map(|t| format!("'{}'", t.name)).collect();
    format!(
        "SELECT table_name FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_name IN ({})",
        names.join(", ")
    )
}

/// An index the toolkit keeps on one of its PostgreSQL tables beside its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecondaryIndex {
    pub name: &'static str,
    pub table: &'static str,
    pub columns: &'static str,
}

/// `songplays (start_time)`: PostgreSQL's counterpart of Redshift's sort key on it. An
/// incremental load reads the plays from the earliest time it touched on (the merge's
/// renumbering and deletes, the checks of the changed rows); without an index PostgreSQL reads
/// every play for them. Measured at 1M events with 29 days loaded, the etl adding day 30 spent
/// most of its checks in sequential scans of songplays. Named with the toolkit's prefix: index
/// names share the schema with tables, which a shared database holds others of.
pub const SONGPLAYS_START_TIME: SecondaryIndex = SecondaryIndex {
    name: "sparkify_songplays_start_time",
    table: "songplays",
    columns: "start_time",
};

/// The secondary indexes of `table` on `dialect`: PostgreSQL's only. DuckDB keeps min/max
/// zone maps per row group itself, Redshift sorts on the key its DDL names
/// ([`redshift_layout`]).
pub fn secondary_indexes(table: &Table, dialect: Dialect) -> Vec<SecondaryIndex> {
    match dialect {
        Dialect::Postgres => [SONGPLAYS_START_TIME]
            .into_iter()
            .filter(|index| index.table == table.name)
            .collect(),
        Dialect::DuckDb | Dialect::Redshift => Vec::new(),
    }
}

/// Creates `index` unless a relation of its name exists: a warehouse made before the index was
/// kept gets it from its next load (https://www.postgresql.org/docs/15/sql-createindex.html).
pub fn create_index(index: &SecondaryIndex) -> String {
    format!(
        "CREATE INDEX IF NOT EXISTS {} ON {} ({})",
        index.name, index.table, index.columns
    )
}

/// Drops `index` when it is the index of that name on its own table, and nothing else: an
/// index of the same name on another table of a shared schema is left alone. A `DO` block
/// (https://www.postgresql.org/docs/15/sql-do.html) finds it in the catalog and drops it by
/// the name its `regclass` prints, qualified when the search path needs it.
pub fn drop_index(index: &SecondaryIndex) -> String {
    format!(
        "DO $$ DECLARE found regclass; BEGIN \
         SELECT i.indexrelid::regclass INTO found FROM pg_catalog.pg_index i \
         JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid \
         WHERE c.relname = '{name}' AND i.indrelid = '{table}'::regclass; \
         IF found IS NOT NULL THEN EXECUTE 'DROP INDEX ' || found; END IF; END $$",
        name = index.name,
        table = index.table
    )
}
