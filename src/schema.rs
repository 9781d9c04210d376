//! The shape of every table the toolkit owns, written once. DDL for each dialect, the typing of
//! source records into staging rows and the engines' bulk appends are all derived from these
//! definitions, so a column added here reaches every one of them.

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

/// One row per line of the event logs, columns in the order the JSONPaths file maps them.
pub static STAGING_EVENTS: Table = Table {
    name: "staging_events",
    columns: &[
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
    ],
    primary_key: &[],
    unique: &[],
};

/// One row per song object, columns matched by name as Redshift's `JSON 'auto ignorecase'`.
pub static STAGING_SONGS: Table = Table {
    name: "staging_songs",
    columns: &[
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
    ],
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
pub static ALL_TABLES: [&Table; 8] = [
    &STAGING_EVENTS,
    &STAGING_SONGS,
    &LOAD_ERRORS,
    &SONGPLAYS,
    &USERS,
    &SONGS,
    &ARTISTS,
    &TIME,
];

/// The star schema, in the order the transform fills it.
pub static STAR_TABLES: [&Table; 5] = [&SONGS, &ARTISTS, &USERS, &SONGPLAYS, &TIME];
