//! The shape of every table the toolkit owns, written once. DDL for each dialect, the typing of
//! source records into staging rows and the engines' bulk appends are all derived from these
//! definitions, so a column added here reaches every one of them.

pub mod rules;

/// Portable column types; each dialect names them in `sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// Text of at most this many bytes (UTF-8). Redshift counts VARCHAR widths in bytes
    /// (<https://docs.aws.amazon.com/redshift/latest/dg/r_Character_types.html>, "Storage and
    /// ranges") and its COPY rejects a longer value; the local loader rejects it the same way,
    /// so every engine stages the same records.
    Text(u32),
    /// 32-bit signed integer.
    Integer,
    /// 64-bit signed integer.
    BigInt,
    Double,
    /// UTC timestamp without time zone, millisecond precision or finer.
    Timestamp,
}

#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColumnType,
    /// NOT NULL in the table; a source record without it is rejected.
    pub required: bool,
    /// The values an integer column accepts from a source; outside it the record is rejected.
    pub range: Option<Range>,
}

/// Bounds of an integer column, inclusive, and what they mean, for the reject's reason.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    pub min: i64,
    pub max: i64,
    pub meaning: &'static str,
}

const fn col(name: &'static str, ty: ColumnType) -> Column {
    Column {
        name,
        ty,
        required: false,
        range: None,
    }
}

const fn req(name: &'static str, ty: ColumnType) -> Column {
    Column {
        name,
        ty,
        required: true,
        range: None,
    }
}

impl Column {
    const fn within(self, range: Range) -> Column {
        Column {
            range: Some(range),
            ..self
        }
    }
}

/// Event times (`ts`, milliseconds since 1970) the transform can turn into timestamps on every
/// engine: years 1900 to 9999 (1900-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z). Outside,
/// the conversion fails the whole transform ("out of range"), so such a record is rejected
/// when it is typed, with its file and line.
pub const EVENT_TIME: Range = Range {
    min: -2_208_988_800_000,
    max: 253_402_300_799_999,
    meaning: "years 1900 to 9999 as milliseconds since 1970-01-01",
};

#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [Column],
    pub primary_key: &'static [&'static str],
    /// A second natural key enforced as UNIQUE.
    pub unique: &'static [&'static str],
}

impl Table {
    pub fn column_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.columns.iter().map(|c| c.name)
    }

    /// The columns of its primary key, then those of its unique key not already among them:
    /// what says which row is meant.
    pub fn key_columns(&self) -> Vec<&'static str> {
        let mut columns = self.primary_key.to_vec();
        for column in self.unique {
            if !columns.contains(column) {
                columns.push(column);
            }
        }
        columns
    }
}

use ColumnType::*;

// Text widths, sized from the Udacity data (longest seen: ids 18 bytes, titles and artist
// names about 250, user agents 139, locations about 200) with room to spare. Narrow columns
// matter on Redshift: "use the smallest possible column size", since intermediate results
// are held at the declared width
// (<https://docs.aws.amazon.com/redshift/latest/dg/c_best-practices-smallest-column-size.html>).
/// Song and artist ids (`SOMZWCG12A8C13C480`, `ARD7TVE1187B99BFB1`).
const ID: ColumnType = Text(64);
/// Titles and artist names.
const NAME: ColumnType = Text(512);
/// First and last names of users.
const PERSON: ColumnType = Text(256);
/// Locations of users and artists.
const PLACE: ColumnType = Text(512);

/// The columns of a log record, in the order the JSONPaths file maps them.
const EVENT_COLUMNS: &[Column] = &[
    col("artist", NAME),
    col("auth", Text(32)),
    col("first_name", PERSON),
    col("gender", Text(16)),
    req("item_in_session", Integer),
    col("last_name", PERSON),
    col("length", Double),
    col("level", Text(16)),
    col("location", PLACE),
    col("method", Text(16)),
    col("page", Text(64)),
    col("registration", Double),
    req("session_id", Integer),
    col("song", NAME),
    col("status", Integer),
    req("ts", BigInt).within(EVENT_TIME),
    col("user_agent", Text(512)),
    col("user_id", Integer),
];

/// Every log record of the files loaded so far (one row per line of the event logs), columns
/// in the order the JSONPaths file maps them. A full refresh empties it; an incremental load
/// adds the records of the new files (see [`INCOMING_EVENTS`]).
pub static STAGING_EVENTS: Table = Table {
    name: "staging_events",
    columns: EVENT_COLUMNS,
    primary_key: &[],
    unique: &[],
};

/// The log records of the files an incremental load found new, before they join
/// `staging_events`: the transform merges what they change into the star schema.
pub static INCOMING_EVENTS: Table = Table {
    name: "incoming_events",
    columns: EVENT_COLUMNS,
    primary_key: &[],
    unique: &[],
};

/// The columns of a song object, matched by name as Redshift's `JSON 'auto ignorecase'`.
const SONG_COLUMNS: &[Column] = &[
    col("num_songs", Integer),
    req("artist_id", ID),
    col("artist_latitude", Double),
    col("artist_longitude", Double),
    col("artist_location", PLACE),
    col("artist_name", NAME),
    req("song_id", ID),
    col("title", NAME),
    col("duration", Double),
    col("year", Integer),
];

/// Every song object of the files loaded so far, as [`STAGING_EVENTS`] for the logs.
pub static STAGING_SONGS: Table = Table {
    name: "staging_songs",
    columns: SONG_COLUMNS,
    primary_key: &[],
    unique: &[],
};

/// The song objects of the files an incremental load found new, before they join
/// `staging_songs`.
pub static INCOMING_SONGS: Table = Table {
    name: "incoming_songs",
    columns: SONG_COLUMNS,
    primary_key: &[],
    unique: &[],
};

/// Every source record that could not be staged, with where it came from and why.
pub static LOAD_ERRORS: Table = Table {
    name: "load_errors",
    columns: &[
        req("source", Text(16)),
        req("file", Text(2048)),
        col("line", BigInt),
        req("reason", Text(1024)),
        col("raw_text", Text(1024)),
    ],
    primary_key: &[],
    unique: &[],
};

/// The ledger of incremental loads: one row per source file in staging, with what identified
/// its contents when it was loaded (size, and modification time or S3 ETag) and what it
/// yielded; and one row for the JSONPaths mapping (source `log_jsonpath`, version its
/// fingerprint). A file found again with the same size and version is not read again.
pub static LOADED_FILES: Table = Table {
    name: "loaded_files",
    columns: &[
        req("source", Text(16)),
        req("file", Text(2048)),
        req("bytes", BigInt),
        req("version", Text(256)),
        // Unknown (NULL) where Redshift's COPY read the file: it counts rows per COPY.
        col("records", BigInt),
        col("staged", BigInt),
        req("rejected", BigInt),
        // UTC, ISO 8601: when the run that loaded it started.
        req("loaded_at", Text(32)),
    ],
    primary_key: &["source", "file"],
    unique: &[],
};

pub static SONGPLAYS: Table = Table {
    name: "songplays",
    columns: &[
        req("songplay_id", BigInt),
        req("start_time", Timestamp),
        req("user_id", Integer),
        col("level", Text(16)),
        col("song_id", ID),
        col("artist_id", ID),
        req("session_id", Integer),
        req("item_in_session", Integer),
        col("location", PLACE),
        col("user_agent", Text(512)),
    ],
    primary_key: &["songplay_id"],
    unique: &["user_id", "session_id", "item_in_session"],
};

pub static USERS: Table = Table {
    name: "users",
    columns: &[
        req("user_id", Integer),
        col("first_name", PERSON),
        col("last_name", PERSON),
        col("gender", Text(16)),
        col("level", Text(16)),
    ],
    primary_key: &["user_id"],
    unique: &[],
};

pub static SONGS: Table = Table {
    name: "songs",
    columns: &[
        req("song_id", ID),
        col("title", NAME),
        col("artist_id", ID),
        col("year", Integer),
        col("duration", Double),
    ],
    primary_key: &["song_id"],
    unique: &[],
};

pub static ARTISTS: Table = Table {
    name: "artists",
    columns: &[
        req("artist_id", ID),
        col("name", NAME),
        col("location", PLACE),
        col("latitude", Double),
        col("longitude", Double),
    ],
    primary_key: &["artist_id"],
    unique: &[],
};

pub static TIME: Table = Table {
    name: "time",
    columns: &[
        req("start_time", Timestamp),
        req("hour", Integer),
        req("day", Integer),
        req("week", Integer),
        req("month", Integer),
        req("year", Integer),
        req("weekday", Integer),
    ],
    primary_key: &["start_time"],
    unique: &[],
};

/// Every table `create_tables` makes, in creation order.
pub static ALL_TABLES: [&Table; 11] = [
    &STAGING_EVENTS,
    &STAGING_SONGS,
    &INCOMING_EVENTS,
    &INCOMING_SONGS,
    &LOADED_FILES,
    &LOAD_ERRORS,
    &SONGPLAYS,
    &USERS,
    &SONGS,
    &ARTISTS,
    &TIME,
];

/// The star schema, in the order the transform fills it.
pub static STAR_TABLES: [&Table; 5] = [&SONGS, &ARTISTS, &USERS, &SONGPLAYS, &TIME];
