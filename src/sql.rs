//! Every SQL statement the toolkit runs, and the one place where SQL dialects differ. DDL is
//! generated from the table definitions in `schema`; the transform and the analysis queries are
//! written once in SQL that DuckDB, PostgreSQL and Redshift share, with the few dialect-specific
//! expressions supplied by [`Dialect`].
//!
//! Determinism: every `ROW_NUMBER()` that picks a winner among several source records orders by
//! enough columns to make the choice total, with explicit `NULLS LAST`, so the same input gives
//! the same rows on every engine and in any file order.

use crate::record::Reject;
use crate::schema::{ColumnType, Table, ARTISTS, LOAD_ERRORS, SONGPLAYS, SONGS, TIME, USERS};

/// A SQL dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    DuckDb,
    Postgres,
    Redshift,
}

impl Dialect {
    pub fn type_name(self, ty: ColumnType) -> &'static str {
        match (self, ty) {
            (Dialect::DuckDb, ColumnType::Text) => "VARCHAR",
            // Byte order, as DuckDB's, whatever the database's collation: sorts and the
            // tie-breaks that pick among duplicate records agree on both engines.
            (Dialect::Postgres, ColumnType::Text) => "TEXT COLLATE \"C\"",
            // Redshift's TEXT is VARCHAR(256); a longer value would fail the COPY. Redshift
            // compares VARCHAR bytewise, as DuckDB does.
            (Dialect::Redshift, ColumnType::Text) => "VARCHAR(65535)",
            (_, ColumnType::Integer) => "INTEGER",
            (_, ColumnType::BigInt) => "BIGINT",
            (Dialect::DuckDb, ColumnType::Double) => "DOUBLE",
            (Dialect::Postgres | Dialect::Redshift, ColumnType::Double) => "DOUBLE PRECISION",
            (_, ColumnType::Timestamp) => "TIMESTAMP",
        }
    }

    /// Whether tables declare their primary and unique keys. DuckDB maintains an index for
    /// each declared key on every insert: on 1M events that made the transform 3x slower
    /// (songplays 4.0 s against 1.3 s), so there the keys are checked by [`duplicate_keys`]
    /// after the transform instead. Redshift does not enforce declared keys but its planner
    /// uses them; they are checked after the transform on every engine.
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
}

/// Transaction control, the same in every dialect.
pub const BEGIN: &str = "BEGIN";
pub const COMMIT: &str = "COMMIT";
pub const ROLLBACK: &str = "ROLLBACK";

/// DuckDB session settings. Row order in a table carries no meaning here (every key and number
/// is computed by ORDER BY), and not keeping it made the songplays transform 20% faster.
pub const DUCKDB_SESSION: &str = "SET preserve_insertion_order = false";

/// PostgreSQL's bulk load of `table` from the client, text format, columns in schema order.
pub fn copy_from_stdin(table: &Table) -> String {
    let columns: Vec<&str> = table.column_names().collect();
    format!("COPY {} ({}) FROM STDIN", table.name, columns.join(", "))
}

/// Whether this PostgreSQL session is encrypted, as the server sees it.
pub const POSTGRES_SESSION_USES_TLS: &str =
    "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

pub fn drop_table(table: &Table) -> String {
    format!("DROP TABLE IF EXISTS {}", table.name)
}

pub fn create_table(table: &Table, dialect: Dialect) -> String {
    let mut lines: Vec<String> = table
        .columns
        .iter()
        .map(|c| {
            let null = if c.required { " NOT NULL" } else { "" };
            format!("    {} {}{null}", c.name, dialect.type_name(c.ty))
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

/// What Redshift's COPY of one source needs from `dwh.cfg`.
#[derive(Debug, Clone)]
pub struct S3Copy<'a> {
    pub table: &'a Table,
    /// `s3://bucket/prefix` of the source objects.
    pub from: &'a str,
    pub iam_role: &'a str,
    /// `FORMAT AS JSON` argument: a JSONPaths `s3://` URI, or `auto ignorecase`.
    pub json: &'a str,
    /// The bucket's region; empty leaves it to the cluster's.
    pub region: &'a str,
    pub max_errors: u64,
}

/// Redshift loads staging itself from S3. Log records map onto columns through the JSONPaths
/// file; song records by name (`auto ignorecase`, as `artist_id` for `ARTIST_ID`). Event times
/// are epoch milliseconds loaded into a BIGINT and converted by the transform, keeping the
/// milliseconds. MAXERROR bounds the records Redshift may skip in this COPY; the skipped ones
/// are read back from its load-error table into `load_errors`.
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
    if !copy.region.is_empty() {
        sql.push_str(&format!("\nREGION {}", redshift_literal(copy.region)?));
    }
    sql.push_str(&format!("\nMAXERROR {}", copy.max_errors));
    Ok(sql)
}

/// Where Redshift keeps load errors: Serverless has only the SYS views; a provisioned cluster
/// has `stl_load_errors`, which also keeps the raw line.
pub fn redshift_load_error_table(serverless: bool) -> &'static str {
    if serverless {
        "sys_load_error_detail"
    } else {
        "stl_load_errors"
    }
}

/// Rows of Redshift's load-error table (see [`redshift_load_error_table`]) for the last COPY of
/// this session: file, line, column, reason, raw line.
pub fn redshift_load_errors(serverless: bool) -> &'static str {
    if serverless {
        "SELECT TRIM(file_name) AS file, line_number AS line, TRIM(column_name) AS column_name, \
         TRIM(error_message) AS reason, CAST('' AS VARCHAR) AS raw_line \
         FROM sys_load_error_detail WHERE query_id = pg_last_copy_id() \
         ORDER BY file_name, line_number"
    } else {
        "SELECT TRIM(filename) AS file, line_number AS line, TRIM(colname) AS column_name, \
         TRIM(err_reason) AS reason, TRIM(raw_line) AS raw_line \
         FROM stl_load_errors WHERE query = pg_last_copy_id() \
         ORDER BY filename, line_number"
    }
}

/// Inserts rejects read back from Redshift's load-error table into `load_errors`. Their text
/// comes from the data, not from the config: control characters become spaces.
pub fn insert_rejects_redshift(rejects: &[Reject]) -> String {
    let quote = |text: &str| {
        let clean: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        redshift_literal(&clean).unwrap_or_else(|_| "''".into())
    };
    let rows: Vec<String> = rejects
        .iter()
        .map(|r| {
            let line = r.line.map_or("NULL".to_string(), |l| l.to_string());
            format!(
                "({}, {}, {line}, {}, {})",
                quote(r.source),
                quote(&r.file),
                quote(&r.reason),
                quote(&r.raw_text)
            )
        })
        .collect();
    let columns: Vec<&str> = LOAD_ERRORS.column_names().collect();
    format!(
        "INSERT INTO load_errors ({}) VALUES\n{}",
        columns.join(", "),
        rows.join(",\n")
    )
}

/// Rows the last COPY of this session loaded.
pub const REDSHIFT_LAST_COPY_COUNT: &str = "SELECT pg_last_copy_count()";

/// For each key of `table` (primary, then unique), a query counting the key values held by
/// more than one row; 0 means the key holds.
pub fn duplicate_keys(table: &Table) -> Vec<(&'static [&'static str], String)> {
    [table.primary_key, table.unique]
        .into_iter()
        .filter(|key| !key.is_empty())
        .map(|key| {
            let columns = key.join(", ");
            let sql = format!(
                "SELECT COUNT(*) FROM (SELECT {columns} FROM {} GROUP BY {columns} \
                 HAVING COUNT(*) > 1) duplicates",
                table.name
            );
            (key, sql)
        })
        .collect()
}

pub fn delete_all(table: &Table) -> String {
    format!("DELETE FROM {}", table.name)
}

pub fn count_rows(table: &Table) -> String {
    format!("SELECT COUNT(*) FROM {}", table.name)
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

/// The transform from staging into the star schema: one `INSERT ... SELECT` per table, in an
/// order where each statement reads only tables already filled. The star tables must be empty.
pub fn transform(dialect: Dialect) -> Vec<(&'static Table, String)> {
    let start_time = dialect.epoch_ms_to_timestamp("p.ts");
    vec![
        (&SONGS, INSERT_SONGS.to_string()),
        (&ARTISTS, INSERT_ARTISTS.to_string()),
        (&USERS, INSERT_USERS.to_string()),
        (
            &SONGPLAYS,
            INSERT_SONGPLAYS.replace("{start_time}", &start_time),
        ),
        (&TIME, INSERT_TIME.to_string()),
    ]
}

/// One row per song_id; among duplicates the order over all columns decides.
const INSERT_SONGS: &str = "\
INSERT INTO songs (song_id, title, artist_id, year, duration)
SELECT song_id, title, artist_id, year, duration
FROM (
    SELECT song_id, title, artist_id, year, duration,
           ROW_NUMBER() OVER (
               PARTITION BY song_id
               ORDER BY artist_id NULLS LAST, title NULLS LAST, year NULLS LAST,
                        duration NULLS LAST
           ) AS pick
    FROM staging_songs
) ranked
WHERE pick = 1";

/// One row per artist_id; the most complete record wins (coordinates, then a location).
const INSERT_ARTISTS: &str = "\
INSERT INTO artists (artist_id, name, location, latitude, longitude)
SELECT artist_id, artist_name, artist_location, artist_latitude, artist_longitude
FROM (
    SELECT artist_id, artist_name, artist_location, artist_latitude, artist_longitude,
           ROW_NUMBER() OVER (
               PARTITION BY artist_id
               ORDER BY CASE WHEN artist_latitude IS NULL THEN 1 ELSE 0 END,
                        CASE WHEN artist_location IS NULL OR artist_location = '' THEN 1 ELSE 0 END,
                        artist_name NULLS LAST, artist_location NULLS LAST,
                        artist_latitude NULLS LAST, artist_longitude NULLS LAST
           ) AS pick
    FROM staging_songs
) ranked
WHERE pick = 1";

/// One row per user seen in any event; name, gender and level from the latest event.
const INSERT_USERS: &str = "\
INSERT INTO users (user_id, first_name, last_name, gender, level)
SELECT user_id, first_name, last_name, gender, level
FROM (
    SELECT user_id, first_name, last_name, gender, level,
           ROW_NUMBER() OVER (
               PARTITION BY user_id
               ORDER BY ts DESC NULLS LAST, item_in_session DESC NULLS LAST,
                        session_id DESC NULLS LAST, level NULLS LAST, first_name NULLS LAST,
                        last_name NULLS LAST, gender NULLS LAST
           ) AS pick
    FROM staging_events
    WHERE user_id IS NOT NULL
) ranked
WHERE pick = 1";

/// One row per NextSong event with a user, unique on (user_id, session_id, item_in_session):
/// among duplicates the earliest wins. The song matches a catalogue entry with equal title and
/// artist name and a duration within 0.01 s; the nearest duration wins, then the smallest
/// song_id. songplay_id numbers plays in time order, so it is the same on every run.
const INSERT_SONGPLAYS: &str = "\
INSERT INTO songplays (songplay_id, start_time, user_id, level, song_id, artist_id, session_id,
                       item_in_session, location, user_agent)
WITH plays AS (
    SELECT ts, user_id, level, song, artist, length, session_id, item_in_session, location,
           user_agent
    FROM (
        SELECT e.*,
               ROW_NUMBER() OVER (
                   PARTITION BY user_id, session_id, item_in_session
                   ORDER BY ts NULLS LAST, level NULLS LAST, song NULLS LAST,
                            artist NULLS LAST, length NULLS LAST, location NULLS LAST,
                            user_agent NULLS LAST
               ) AS pick
        FROM staging_events e
        WHERE page = 'NextSong' AND user_id IS NOT NULL
    ) ranked
    WHERE pick = 1
),
matches AS (
    SELECT p.user_id, p.session_id, p.item_in_session, s.song_id,
           ROW_NUMBER() OVER (
               PARTITION BY p.user_id, p.session_id, p.item_in_session
               ORDER BY ABS(s.duration - p.length), s.song_id
           ) AS pick
    FROM plays p
    JOIN staging_songs s
      ON s.title = p.song
     AND s.artist_name = p.artist
     AND ABS(s.duration - p.length) <= 0.01
)
SELECT ROW_NUMBER() OVER (ORDER BY p.ts, p.user_id, p.session_id, p.item_in_session),
       {start_time}, p.user_id, p.level, m.song_id, so.artist_id, p.session_id,
       p.item_in_session, p.location, p.user_agent
FROM plays p
LEFT JOIN matches m
  ON m.user_id = p.user_id AND m.session_id = p.session_id
 AND m.item_in_session = p.item_in_session AND m.pick = 1
LEFT JOIN songs so ON so.song_id = m.song_id";

/// One row per distinct play time; weekday 0 = Sunday, week is the ISO-8601 week.
const INSERT_TIME: &str = "\
INSERT INTO time (start_time, hour, day, week, month, year, weekday)
SELECT start_time,
       CAST(EXTRACT(hour FROM start_time) AS INTEGER),
       CAST(EXTRACT(day FROM start_time) AS INTEGER),
       CAST(EXTRACT(week FROM start_time) AS INTEGER),
       CAST(EXTRACT(month FROM start_time) AS INTEGER),
       CAST(EXTRACT(year FROM start_time) AS INTEGER),
       CAST(EXTRACT(dow FROM start_time) AS INTEGER)
FROM (SELECT DISTINCT start_time FROM songplays) plays";

/// One business question of `analysis`.
#[derive(Debug)]
pub struct AnalysisQuery {
    pub name: &'static str,
    pub title: &'static str,
    sql: &'static str,
}

impl AnalysisQuery {
    /// Whether the answer is a ranking cut to `--limit` rows.
    pub fn is_ranking(&self) -> bool {
        self.sql.contains("{limit}")
    }

    pub fn sql(&self, limit: u32) -> String {
        self.sql.replace("{limit}", &limit.to_string())
    }
}

/// Plays per value of one `time` column. Each play joins exactly one `time` row (its primary
/// key), so nothing is counted twice.
macro_rules! plays_by {
    ($name:literal, $title:literal, $column:literal) => {
        AnalysisQuery {
            name: $name,
            title: $title,
            sql: concat!(
                "SELECT t.",
                $column,
                ", COUNT(*) AS plays FROM songplays sp JOIN time t ON t.start_time = sp.start_time GROUP BY t.",
                $column,
                " ORDER BY t.",
                $column
            ),
        }
    };
}

/// The original project's thirteen questions. Aggregates are taken over `songplays` before any
/// join to a dimension, and every join is on a primary key, so no join double-counts.
pub static ANALYSIS_QUERIES: &[AnalysisQuery] = &[
    AnalysisQuery {
        name: "both_levels",
        title: "Users who played both as free and as paid users",
        sql: "\
SELECT u.user_id, u.first_name, u.last_name, p.plays
FROM (SELECT user_id, COUNT(*) AS plays FROM songplays GROUP BY user_id
      HAVING COUNT(DISTINCT level) = 2) p
JOIN users u ON u.user_id = p.user_id
ORDER BY p.plays DESC, u.user_id
LIMIT {limit}",
    },
    AnalysisQuery {
        name: "users_by_level",
        title: "Users by current level",
        sql: "SELECT level, COUNT(*) AS users FROM users GROUP BY level ORDER BY level",
    },
    AnalysisQuery {
        name: "song_count",
        title: "Number of songs",
        sql: "SELECT COUNT(*) AS songs FROM songs",
    },
    AnalysisQuery {
        name: "artist_count",
        title: "Number of artists",
        sql: "SELECT COUNT(*) AS artists FROM artists",
    },
    AnalysisQuery {
        name: "top_users",
        title: "Users with the most plays",
        sql: "\
SELECT u.user_id, u.first_name, u.last_name, u.level, p.plays
FROM (SELECT user_id, COUNT(*) AS plays FROM songplays GROUP BY user_id) p
JOIN users u ON u.user_id = p.user_id
ORDER BY p.plays DESC, u.user_id
LIMIT {limit}",
    },
    plays_by!("plays_by_year", "Plays by year", "year"),
    plays_by!("plays_by_day", "Plays by day of the month", "day"),
    plays_by!("plays_by_week", "Plays by ISO week", "week"),
    plays_by!("plays_by_month", "Plays by month", "month"),
    plays_by!("plays_by_hour", "Plays by hour of the day (UTC)", "hour"),
    AnalysisQuery {
        name: "plays_by_weekday",
        title: "Plays by weekday",
        sql: "\
SELECT t.weekday,
       CASE t.weekday WHEN 0 THEN 'Sunday' WHEN 1 THEN 'Monday' WHEN 2 THEN 'Tuesday'
                      WHEN 3 THEN 'Wednesday' WHEN 4 THEN 'Thursday' WHEN 5 THEN 'Friday'
                      ELSE 'Saturday' END AS day_name,
       COUNT(*) AS plays
FROM songplays sp JOIN time t ON t.start_time = sp.start_time
GROUP BY t.weekday
ORDER BY t.weekday",
    },
    AnalysisQuery {
        name: "top_artists",
        title: "Most played artists",
        sql: "\
SELECT a.artist_id, a.name, p.plays
FROM (SELECT artist_id, COUNT(*) AS plays FROM songplays WHERE artist_id IS NOT NULL
      GROUP BY artist_id) p
JOIN artists a ON a.artist_id = p.artist_id
ORDER BY p.plays DESC, a.artist_id
LIMIT {limit}",
    },
    AnalysisQuery {
        name: "top_songs",
        title: "Most played songs",
        sql: "\
SELECT s.song_id, s.title, a.name AS artist, p.plays
FROM (SELECT song_id, COUNT(*) AS plays FROM songplays WHERE song_id IS NOT NULL
      GROUP BY song_id) p
JOIN songs s ON s.song_id = p.song_id
LEFT JOIN artists a ON a.artist_id = s.artist_id
ORDER BY p.plays DESC, s.song_id
LIMIT {limit}",
    },
];

/// The question called `name`.
pub fn analysis_query(name: &str) -> Option<&'static AnalysisQuery> {
    ANALYSIS_QUERIES.iter().find(|q| q.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::STAGING_EVENTS;

    #[test]
    fn ddl_comes_from_the_schema() {
        let ddl = create_table(&SONGPLAYS, Dialect::DuckDb);
        assert!(ddl.starts_with("CREATE TABLE songplays ("));
        assert!(ddl.contains("start_time TIMESTAMP NOT NULL"));
        assert!(
            !ddl.contains("PRIMARY KEY"),
            "DuckDB checks keys after the transform"
        );
        let checks = duplicate_keys(&SONGPLAYS);
        assert_eq!(checks.len(), 2);
        assert_eq!(checks[1].0, ["user_id", "session_id", "item_in_session"]);
        assert!(checks[1]
            .1
            .contains("GROUP BY user_id, session_id, item_in_session HAVING COUNT(*) > 1"));
        assert!(duplicate_keys(&STAGING_EVENTS).is_empty());
        let staging = create_table(&STAGING_EVENTS, Dialect::DuckDb);
        assert!(staging.contains("user_id INTEGER"));
        assert!(!staging.contains("PRIMARY KEY"));
    }

    #[test]
    fn thirteen_uniquely_named_questions() {
        assert_eq!(ANALYSIS_QUERIES.len(), 13);
        let mut names: Vec<_> = ANALYSIS_QUERIES.iter().map(|q| q.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 13);
        let top = analysis_query("top_songs").unwrap();
        assert!(top.is_ranking());
        assert!(top.sql(5).ends_with("LIMIT 5"));
        assert!(!analysis_query("plays_by_hour").unwrap().is_ranking());
    }

    #[test]
    fn transform_fills_every_star_table_once() {
        let tables: Vec<_> = transform(Dialect::DuckDb)
            .iter()
            .map(|(t, _)| t.name)
            .collect();
        assert_eq!(tables, ["songs", "artists", "users", "songplays", "time"]);
        assert!(transform(Dialect::DuckDb)[3].1.contains("epoch_ms(p.ts)"));
    }
}
