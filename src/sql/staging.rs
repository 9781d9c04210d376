//! Filling staging: Redshift's COPY from S3 and what it rejects, PostgreSQL's COPY from stdin,
//! inserts where no bulk path exists, the rejects in `load_errors` and the ledger of the files
//! each load read.

use crate::record::{Field, Reject, Row};
use crate::schema::{ColumnType, Table, LOAD_ERRORS};

use super::{redshift_literal, text_literal, Dialect};

/// What Redshift's COPY stages that the local loader rejects when it types a record: a value
/// outside its column's range (`ts` outside [`crate::schema::EVENT_TIME`], which the transform
/// could not convert), and a text longer than its column's width whose excess is blanks, which
/// Redshift stores cut to the width instead of refusing ("unless the extra characters are all
/// spaces (blanks), in which case the string is truncated to the maximum length",
/// https://docs.aws.amazon.com/redshift/latest/dg/r_Character_types.html, "Significance of
/// trailing blanks"). So that such a text is seen at all, the tables COPY fills are one byte
/// wider on Redshift (see [`loaded_by_copy`]). These statements count the records, move them
/// into `load_errors` (file: the COPY's source, no line; the reason of the first failing column,
/// in column order, as the local loader gives) and delete them from `table`, which the COPY
/// filled (a staging table, or an incoming one in an incremental load).
pub fn redshift_reject_unloadable(
    table: &Table,
    source: &str,
    from: &str,
) -> Result<[String; 3], String> {
    let mut conditions = Vec::new();
    let mut reasons = Vec::new();
    for column in table.columns {
        let name = column.name;
        if let Some(range) = column.range {
            let outside = format!("{name} < {} OR {name} > {}", range.min, range.max);
            reasons.push(format!(
                "WHEN {outside} THEN '{name}: ' || CAST({name} AS VARCHAR(24)) || ' is outside {}'",
                range.meaning
            ));
            conditions.push(outside);
        }
        if let ColumnType::Text(width) = column.ty {
            let longer = format!("OCTET_LENGTH({name}) > {width}");
            reasons.push(format!(
                "WHEN {longer} THEN '{name}: is longer than the column''s width of {width} bytes \
                 (blanks beyond it included)'"
            ));
            conditions.push(longer);
        }
    }
    let any = conditions
        .iter()
        .map(|c| format!("({c})"))
        .collect::<Vec<_>>()
        .join(" OR ");
    let table = table.name;
    Ok([
        format!("SELECT COUNT(*) FROM {table} WHERE {any}"),
        format!(
            "INSERT INTO load_errors (source, file, line, reason, raw_text) \
             SELECT {}, {}, NULL, CASE {} END, NULL FROM {table} WHERE {any}",
            redshift_literal(source)?,
            redshift_literal(from)?,
            reasons.join(" ")
        ),
        format!("DELETE FROM {table} WHERE {any}"),
    ])
}

/// Whether Redshift's COPY fills `table` (the staging and incoming tables). Their text columns
/// are declared one byte wider there than the contract's width, so that a value cut to the
/// width by COPY is still longer than it and rejected (see [`redshift_reject_unloadable`]).
pub fn loaded_by_copy(table: &Table) -> bool {
    use crate::schema::{INCOMING_EVENTS, INCOMING_SONGS, STAGING_EVENTS, STAGING_SONGS};
    [
        &STAGING_EVENTS,
        &STAGING_SONGS,
        &INCOMING_EVENTS,
        &INCOMING_SONGS,
    ]
    .iter()
    .any(|t| t.name == table.name)
}

/// PostgreSQL's bulk load of `table` from the client, text format, columns in schema order.
pub fn copy_from_stdin(table: &Table) -> String {
    let columns: Vec<&str> = table.column_names().collect();
    format!("COPY {} ({}) FROM STDIN", table.name, columns.join(", "))
}

/// What Redshift's COPY of one source needs from `dwh.cfg`.
#[derive(Debug, Clone)]
pub struct S3Copy<'a> {
    pub table: &'a Table,
    /// `s3://bucket/prefix/` of the source objects, or of a manifest listing them.
    pub from: &'a str,
    /// Whether `from` is a manifest file rather than a prefix.
    pub manifest: bool,
    pub iam_role: &'a str,
    /// `FORMAT AS JSON` argument: a JSONPaths `s3://` URI, or `auto ignorecase`.
    pub json: &'a str,
    /// The bucket's region; empty leaves it to the cluster's.
    pub region: &'a str,
    /// Rejected records this toolkit tolerates (`[WAREHOUSE] MAX_ERRORS`).
    pub max_errors: u64,
}

/// The largest MAXERROR Redshift accepts
/// (https://docs.aws.amazon.com/redshift/latest/dg/copy-parameters-data-load.html#copy-maxerror).
pub const REDSHIFT_MAXERROR_LIMIT: u64 = 100_000;

/// The MAXERROR that lets a COPY skip exactly `max_errors` records. Redshift fails a load when
/// it "returns the error_count number of errors or greater"
/// (https://docs.aws.amazon.com/redshift/latest/dg/copy-parameters-data-load.html#copy-maxerror),
/// while `MAX_ERRORS` is the number of rejects still tolerated: 0 stays 0 (fail on the first
/// error), n becomes n + 1, at most Redshift's limit.
pub fn redshift_maxerror(max_errors: u64) -> Result<u64, String> {
    let maxerror = if max_errors == 0 {
        0
    } else {
        max_errors.saturating_add(1)
    };
    if maxerror > REDSHIFT_MAXERROR_LIMIT {
        return Err(format!(
            "MAX_ERRORS = {max_errors} is more than Redshift's COPY can skip: its MAXERROR is at \
             most {REDSHIFT_MAXERROR_LIMIT}, so MAX_ERRORS may be at most {}",
            REDSHIFT_MAXERROR_LIMIT - 1
        ));
    }
    Ok(maxerror)
}

/// Redshift loads staging itself from S3. Log records map onto columns through the JSONPaths
/// file; song records by name (`auto ignorecase`, as `artist_id` for `ARTIST_ID`). Event times
/// are epoch milliseconds loaded into a BIGINT and converted by the transform, keeping the
/// milliseconds. MAXERROR bounds the records Redshift may skip in this COPY (see
/// [`redshift_maxerror`]); the skipped ones are read back into `load_errors`. With a manifest,
/// COPY reads exactly the objects it lists
/// (https://docs.aws.amazon.com/redshift/latest/dg/loading-data-files-using-manifest.html).
pub fn copy_from_s3(copy: &S3Copy) -> Result<String, String> {
    let columns: Vec<&str> = copy.table.column_names().collect();
    let mut sql = format!(
        "COPY {} ({})\nFROM {}\nIAM_ROLE {}\nFORMAT AS JSON {}",
        copy.table.name,
        columns.join(", "),
        redshift_literal(copy.from)?,
        redshift_literal(copy.iam_role)?,
        redshift_literal(copy.json)?,
    );
    if copy.manifest {
        sql.push_str("\nMANIFEST");
    }
    if !copy.region.is_empty() {
        sql.push_str(&format!("\nREGION {}", redshift_literal(copy.region)?));
    }
    // Statistics for the planner even though the table was emptied by DELETE in this
    // transaction, not created empty: "statistics are updated automatically if the table is
    // initially empty", and with STATUPDATE ON "regardless of whether the table is initially
    // empty" (the owner, who ran create_tables, may ask it)
    // (https://docs.aws.amazon.com/redshift/latest/dg/copy-parameters-data-load.html#copy-statupdate).
    sql.push_str("\nSTATUPDATE ON");
    sql.push_str(&format!(
        "\nMAXERROR {}",
        redshift_maxerror(copy.max_errors)?
    ));
    Ok(sql)
}

/// The newest COPY into `table` in this session, from `sys_load_history`: its query id, rows
/// loaded, errors and status. SYS views exist on Serverless and on provisioned clusters alike
/// (https://docs.aws.amazon.com/redshift/latest/dg/cm_chap_system-tables.html), while
/// Serverless refuses queries of the STL tables; its `session_id` is the process id of the
/// session that ran the COPY (https://docs.aws.amazon.com/redshift/latest/dg/SYS_LOAD_HISTORY.html),
/// which `pg_backend_pid()` returns. Its rows outlive a rolled-back COPY, so this also finds a
/// COPY that failed.
pub fn redshift_copy_outcome(table: &Table) -> String {
    format!(
        "SELECT query_id, loaded_rows, error_count, TRIM(status) AS status \
         FROM sys_load_history \
         WHERE session_id = pg_backend_pid() \
         AND (TRIM(table_name) = '{name}' OR TRIM(table_name) LIKE '%.{name}') \
         ORDER BY start_time DESC LIMIT 1",
        name = table.name
    )
}

/// The records COPY `query_id` (from [`redshift_copy_outcome`]) skipped: file, line, column,
/// reason (https://docs.aws.amazon.com/redshift/latest/dg/SYS_LOAD_ERROR_DETAIL.html).
pub fn redshift_load_errors(query_id: impl std::fmt::Display) -> String {
    format!(
        "SELECT TRIM(file_name) AS file, line_number AS line, TRIM(column_name) AS column_name, \
         TRIM(error_message) AS reason \
         FROM sys_load_error_detail WHERE query_id = {query_id} \
         ORDER BY file_name, line_number"
    )
}

/// The raw lines of the records the last COPY of this session skipped, which only a
/// provisioned cluster keeps, in `stl_load_errors`, under its own query id, `pg_last_copy_id()`
/// (https://docs.aws.amazon.com/redshift/latest/dg/r_STL_LOAD_ERRORS.html,
/// https://docs.aws.amazon.com/redshift/latest/dg/PG_LAST_COPY_ID.html).
pub const REDSHIFT_RAW_LINES: &str = "\
SELECT TRIM(filename) AS file, line_number AS line, TRIM(raw_line) AS raw_line \
FROM stl_load_errors WHERE query = pg_last_copy_id()";

/// Longest statement sent to Redshift when inserting rejects: well under the Data API's
/// limit of 100 KB on the text of a statement
/// (https://docs.aws.amazon.com/redshift/latest/mgmt/data-api.html, "Considerations").
pub const REDSHIFT_STATEMENT_BYTES: usize = 64 * 1024;

/// Inserts rejects read back from Redshift into `load_errors` (see [`insert_rows_redshift`]).
pub fn insert_rejects_redshift(rejects: &[Reject]) -> Vec<String> {
    let rows: Vec<Row> = rejects.iter().map(Reject::to_row).collect();
    insert_rows_redshift(&LOAD_ERRORS, &rows)
}

/// Inserts `rows` into `table` on Redshift, in as many statements of at most
/// [`REDSHIFT_STATEMENT_BYTES`] as they need. Texts come from the data or from S3, not from the
/// config, and are quoted as literals; control characters become spaces.
pub fn insert_rows_redshift(table: &Table, rows: &[Row]) -> Vec<String> {
    let quote = |field: &Field| match field {
        Field::Text(text) => {
            let clean: String = text
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            redshift_literal(&clean).unwrap_or_else(|_| "''".into())
        }
        Field::Int(i) => i.to_string(),
        Field::Float(x) => x.to_string(),
        Field::Null => "NULL".into(),
    };
    let columns: Vec<&str> = table.column_names().collect();
    let head = format!(
        "INSERT INTO {} ({}) VALUES\n",
        table.name,
        columns.join(", ")
    );
    let mut statements = Vec::new();
    let mut statement = String::new();
    for row in rows {
        let values: Vec<String> = row.iter().map(quote).collect();
        let row = format!("({})", values.join(", "));
        if !statement.is_empty() && statement.len() + 2 + row.len() > REDSHIFT_STATEMENT_BYTES {
            statements.push(std::mem::take(&mut statement));
        }
        if statement.is_empty() {
            statement.push_str(&head);
        } else {
            statement.push_str(",\n");
        }
        statement.push_str(&row);
    }
    if !statement.is_empty() {
        statements.push(statement);
    }
    statements
}

pub fn delete_all(table: &Table) -> String {
    format!("DELETE FROM {}", table.name)
}

/// Empties `table` inside the load's transaction. PostgreSQL: TRUNCATE, which is transactional
/// there (a rollback brings the rows back) and leaves no dead rows behind, where a DELETE of a
/// million rows every run left the tables and their indexes bloated until autovacuum came
/// (a 1M-event key check read 12 GB after a few runs); readers wait for the load's commit
/// instead of reading the old rows meanwhile
/// (https://www.postgresql.org/docs/15/sql-truncate.html). Redshift's TRUNCATE commits the
/// transaction (https://docs.aws.amazon.com/redshift/latest/dg/r_TRUNCATE.html), so it keeps
/// DELETE, as DuckDB does.
pub fn empty_table(dialect: Dialect, table: &Table) -> String {
    match dialect {
        Dialect::Postgres => format!("TRUNCATE {}", table.name),
        Dialect::DuckDb | Dialect::Redshift => delete_all(table),
    }
}

/// Appends every row of `from` to `to`, tables of the same columns.
pub fn append_all(to: &Table, from: &Table) -> String {
    format!("INSERT INTO {} SELECT * FROM {}", to.name, from.name)
}

/// The ledger's entries (see [`crate::ledger`]): every column, in the table's order.
pub fn ledger_entries() -> String {
    format!(
        "SELECT source, file, bytes, version, records, staged, rejected, loaded_at FROM {}",
        crate::schema::LOADED_FILES.name
    )
}

/// The rejected records and unreadable files `load_errors` holds, in file order, at most
/// `limit`: source, file, line, reason, raw text.
pub fn rejects(limit: u64) -> String {
    format!(
        "SELECT source, file, line, reason, raw_text FROM {} \
         ORDER BY source, file, line NULLS FIRST LIMIT {limit}",
        LOAD_ERRORS.name
    )
}

/// Removes the `load_errors` entries of files that could not be read (not records: no line).
pub fn forget_unreadable_files() -> String {
    format!(
        "DELETE FROM {} WHERE line IS NULL AND reason LIKE '{}%'",
        LOAD_ERRORS.name,
        crate::record::UNREADABLE_FILE
    )
}

/// Deletes the ledger's rows of `files` (source, file as the ledger names it), in statements
/// of at most [`REDSHIFT_STATEMENT_BYTES`].
pub fn forget_ledger_entries(dialect: Dialect, files: &[(String, String)]) -> Vec<String> {
    let mut by_source: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for (source, file) in files {
        by_source.entry(source).or_default().push(file);
    }
    let mut statements = Vec::new();
    for (source, names) in by_source {
        let head = format!(
            "DELETE FROM {} WHERE source = {} AND file IN (",
            crate::schema::LOADED_FILES.name,
            text_literal(dialect, source)
        );
        let mut statement = String::new();
        for name in names {
            let literal = text_literal(dialect, name);
            if !statement.is_empty()
                && statement.len() + literal.len() + 3 > REDSHIFT_STATEMENT_BYTES
            {
                statement.push(')');
                statements.push(std::mem::take(&mut statement));
            }
            if statement.is_empty() {
                statement.push_str(&head);
            } else {
                statement.push_str(", ");
            }
            statement.push_str(&literal);
        }
        if !statement.is_empty() {
            statement.push(')');
            statements.push(statement);
        }
    }
    statements
}
