//! Staging into the star schema: one statement per table, written once for every dialect, with
//! every pick of a winner among several source records ordered totally, so the same input gives
//! the same rows on every engine and in any file order.

use crate::schema::{Table, ARTISTS, SONGPLAYS, SONGS, TIME, USERS};

use super::Dialect;

/// What runs between loading staging and the transform, so the transform's plans cannot turn
/// quadratic. PostgreSQL: statistics of the freshly loaded staging tables (autovacuum would
/// analyze them only after the commit; ANALYZE runs inside a transaction block:
/// https://www.postgresql.org/docs/15/sql-analyze.html), and no nested loops for this
/// transaction: the rows kept by a `ROW_NUMBER() ... = 1` filter are estimated by a fixed guess
/// that no statistics correct (78 of 15,653 plays), and on that guess the planner joined plays
/// and songs in a nested loop, every play against every song (a Udacity-size load took 14 s
/// instead of 0.6 s). Every join of the transform is on equal keys, so hash or merge joins
/// remain (https://www.postgresql.org/docs/15/runtime-config-query.html#GUC-ENABLE-NESTLOOP).
/// With nested loops off, any plan that still holds one (a cross join of one-row subqueries)
/// is costed above ten billion, which turns on PostgreSQL's JIT compiler with all its
/// optimizations (https://www.postgresql.org/docs/15/jit-decision.html): measured at 1M events,
/// the merge's first statement took 1.04 s, 0.66 s of it compiling. JIT is off for this
/// transaction (https://www.postgresql.org/docs/15/runtime-config-query.html#GUC-JIT).
/// DuckDB keeps its statistics as it appends and plans these joins as hash joins; Redshift's
/// COPY updates statistics itself (`STATUPDATE ON` in [`copy_from_s3`]).
///
/// An incremental load analyzes what it merges (`incoming_events`) and the catalogue (small;
/// transformed again when new songs came), not all of `staging_events`: the statistics the
/// last run's ANALYZE committed still describe it, a few percent smaller.
pub fn prepare_transform(dialect: Dialect, incremental: bool) -> Vec<String> {
    // The merge's plans read the statistics of the columns it filters, joins and groups
    // incoming_events on, not of the wide texts beside them: measured at 1M events, analyzing
    // those columns of a day's 33,333 records took 0.10-0.12 s, all of them 0.22-0.28 s.
    let analyzed: &[&str] = if incremental {
        &[
            "incoming_events (user_id, session_id, item_in_session, ts, page, song, artist, length)",
            "staging_songs",
        ]
    } else {
        &["staging_events", "staging_songs"]
    };
    match dialect {
        Dialect::Postgres => analyzed
            .iter()
            .map(|table| format!("ANALYZE {table}"))
            .chain([
                "SET LOCAL enable_nestloop = off".to_string(),
                "SET LOCAL jit = off".to_string(),
            ])
            .collect(),
        Dialect::DuckDb | Dialect::Redshift => Vec::new(),
    }
}

/// What runs after a full transform. PostgreSQL: ANALYZE of the star schema, whose tables were
/// just rewritten. The autovacuum daemon would analyze them in time, where it runs
/// (https://www.postgresql.org/docs/15/routine-vacuuming.html#VACUUM-FOR-STATISTICS), but it
/// can be off (as on the server the tests use), and the next load's merge and checks are
/// planned at once: without statistics PostgreSQL estimates a range of `songplays` at a third
/// of the table whatever the range, and read all of it where its index
/// ([`super::SONGPLAYS_START_TIME`]) answers a new day. Measured at 1M events: 0.21 s for
/// songplays, 0.08 s for time. DuckDB keeps its statistics as it appends; Redshift analyzes
/// tables itself ("Automatic analyze is enabled by default",
/// https://docs.aws.amazon.com/redshift/latest/dg/t_Analyzing_tables.html).
pub fn after_transform(dialect: Dialect) -> Vec<String> {
    match dialect {
        Dialect::Postgres => {
            let names: Vec<&str> = crate::schema::STAR_TABLES.iter().map(|t| t.name).collect();
            vec![format!("ANALYZE {}", names.join(", "))]
        }
        Dialect::DuckDb | Dialect::Redshift => Vec::new(),
    }
}

/// The statements around the transform's insert into one table that drop its primary and
/// unique keys before and add them back after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeysRebuilt {
    pub drop: String,
    pub add: String,
}

/// PostgreSQL builds the keys of the two large tables once, after their insert, instead of
/// maintaining their indexes row by row: measured at 1M events, the songplays and time inserts
/// took about 3 s less without their three unique indexes, and building the indexes afterwards
/// (by sorting) about 1.2 s. Adding a key back fails on a duplicate, and with it the run. The
/// constraints keep the names PostgreSQL gives the ones [`create_table`] declares
/// (`table_pkey`, `table_col1_col2_key`), so the drop finds them on every run. `None` for the
/// other tables and dialects.
pub fn keys_rebuilt_around_insert(dialect: Dialect, table: &Table) -> Option<KeysRebuilt> {
    let large = [&crate::schema::SONGPLAYS, &crate::schema::TIME];
    if dialect != Dialect::Postgres || !large.iter().any(|t| t.name == table.name) {
        return None;
    }
    let mut keys = Vec::new();
    if !table.primary_key.is_empty() {
        keys.push((
            format!("{}_pkey", table.name),
            format!("PRIMARY KEY ({})", table.primary_key.join(", ")),
        ));
    }
    if !table.unique.is_empty() {
        keys.push((
            format!("{}_{}_key", table.name, table.unique.join("_")),
            format!("UNIQUE ({})", table.unique.join(", ")),
        ));
    }
    let clauses = |clause: &dyn Fn(&(String, String)) -> String| {
        keys.iter().map(clause).collect::<Vec<_>>().join(", ")
    };
    Some(KeysRebuilt {
        drop: format!(
            "ALTER TABLE {} {}",
            table.name,
            clauses(&|(name, _)| format!("DROP CONSTRAINT IF EXISTS {name}"))
        ),
        add: format!(
            "ALTER TABLE {} {}",
            table.name,
            clauses(&|(name, key)| format!("ADD CONSTRAINT {name} {key}"))
        ),
    })
}

/// The transform from staging into the star schema: one `INSERT ... SELECT` per table, in an
/// order where each statement reads only tables already filled. The star tables must be empty.
pub fn transform(dialect: Dialect) -> Vec<(&'static Table, String)> {
    vec![
        (&SONGS, insert_songs(dialect)),
        (&ARTISTS, insert_artists(dialect)),
        (&USERS, insert_users(dialect, Scope::All)),
        (&SONGPLAYS, insert_songplays(dialect, Scope::All)),
        (&TIME, insert_time(Scope::All)),
    ]
}

/// Which events a transform statement reads: all of staging, or (for an incremental load) only
/// those that share a user or a play with the records of `incoming_events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    All,
    /// The events of staging that share a user or a play with `incoming_events`.
    Incoming,
    /// The plays of `incoming_events` alone: when no play of theirs was loaded before, no event
    /// of staging outside them shares their natural key (every NextSong event with a user that
    /// was staged is a row of songplays), so they are all of those plays' events.
    IncomingOnly,
}

/// Whether the event aliased `alias` is a play that `incoming_events` holds a record of (by
/// natural key).
pub(super) fn incoming_play(alias: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM incoming_events i WHERE i.user_id = {alias}.user_id \
         AND i.session_id = {alias}.session_id AND i.item_in_session = {alias}.item_in_session)"
    )
}

/// The catalogue as kept: one staging record per song_id, the same one `songs` holds (among
/// duplicates the order over all columns decides), with the artist name it carries. Plays are
/// matched against this record, so a play's song_id and artist_id come from one record whose
/// title and artist name it matched.
fn kept_catalogue(d: Dialect) -> String {
    format!(
        "\
SELECT song_id, title, artist_id, artist_name, year, duration
FROM (
    SELECT song_id, title, artist_id, artist_name, year, duration,
           ROW_NUMBER() OVER (
               PARTITION BY {song_id}
               ORDER BY {artist_id}, {title}, year NULLS LAST, duration NULLS LAST,
                        {artist_name}
           ) AS pick
    FROM staging_songs
) ranked
WHERE pick = 1",
        song_id = d.text_key("song_id"),
        artist_id = d.text_order("artist_id"),
        title = d.text_order("title"),
        artist_name = d.text_order("artist_name"),
    )
}

/// One row per song_id: the catalogue as kept.
fn insert_songs(d: Dialect) -> String {
    format!(
        "\
INSERT INTO songs (song_id, title, artist_id, year, duration)
SELECT song_id, title, artist_id, year, duration
FROM (
{}
) kept",
        kept_catalogue(d)
    )
}

/// One row per artist_id; the most complete record wins (coordinates, then a non-empty
/// location: LENGTH, since on Redshift `' ' = ''` holds).
fn insert_artists(d: Dialect) -> String {
    format!(
        "\
INSERT INTO artists (artist_id, name, location, latitude, longitude)
SELECT artist_id, artist_name, artist_location, artist_latitude, artist_longitude
FROM (
    SELECT artist_id, artist_name, artist_location, artist_latitude, artist_longitude,
           ROW_NUMBER() OVER (
               PARTITION BY {artist_id}
               ORDER BY CASE WHEN artist_latitude IS NULL THEN 1 ELSE 0 END,
                        CASE WHEN artist_location IS NULL OR LENGTH(artist_location) = 0
                             THEN 1 ELSE 0 END,
                        {name}, {location},
                        artist_latitude NULLS LAST, artist_longitude NULLS LAST
           ) AS pick
    FROM staging_songs
) ranked
WHERE pick = 1",
        artist_id = d.text_key("artist_id"),
        name = d.text_order("artist_name"),
        location = d.text_order("artist_location"),
    )
}

/// One row per user seen in any event; name, gender and level from the latest event. Only a
/// user's events at their greatest `ts` (never NULL in staging) can be the latest, so those
/// are found first by a grouped maximum and a join on equal keys, and only they are ranked by
/// the remaining tie-breaks: measured on PostgreSQL at 1M events, sorting every event by user
/// took 1.3-1.7 s of the transform.
///
/// For an incremental load ([`Scope::Incoming`]), the users of `incoming_events` only, in one
/// read of staging: a user's latest event is at least as late as their latest incoming one, so
/// no event before the earliest of those (`merge_from.user_events_from`) can be anyone's latest;
/// the events from then on are ranked in one window, latest first. They are few (a new day's),
/// and the engines that keep each block's minimum and maximum skip the blocks before that time:
/// DuckDB's zone maps (https://duckdb.org/docs/current/guides/performance/indexing.html), Redshift's
/// block metadata, in so far as staging's blocks follow load order (it is not sorted:
/// https://docs.aws.amazon.com/redshift/latest/dg/t_Sorting_data.html). PostgreSQL reads all of
/// staging once, where the full form reads it twice.
pub(super) fn insert_users(d: Dialect, scope: Scope) -> String {
    let tie_breaks = format!(
        "{level}, {first_name}, {last_name}, {gender}",
        level = d.text_order("e.level"),
        first_name = d.text_order("e.first_name"),
        last_name = d.text_order("e.last_name"),
        gender = d.text_order("e.gender"),
    );
    // The events ranked, and the order that ranks them.
    let (events, order) = match scope {
        Scope::All => (
            "staging_events e
    JOIN (
        SELECT user_id, MAX(ts) AS ts
        FROM staging_events
        WHERE user_id IS NOT NULL
        GROUP BY user_id
    ) latest
      ON e.user_id = latest.user_id AND e.ts = latest.ts",
            "e.item_in_session DESC NULLS LAST, e.session_id DESC NULLS LAST,",
        ),
        Scope::Incoming | Scope::IncomingOnly => (
            "staging_events e
    WHERE e.ts >= (SELECT user_events_from FROM merge_from)
      AND e.user_id IN (SELECT user_id FROM incoming_events WHERE user_id IS NOT NULL)",
            "e.ts DESC, e.item_in_session DESC NULLS LAST,
                        e.session_id DESC NULLS LAST,",
        ),
    };
    format!(
        "\
INSERT INTO users (user_id, first_name, last_name, gender, level)
SELECT user_id, first_name, last_name, gender, level
FROM (
    SELECT e.user_id, e.first_name, e.last_name, e.gender, e.level,
           ROW_NUMBER() OVER (
               PARTITION BY e.user_id
               ORDER BY {order}
                        {tie_breaks}
           ) AS pick
    FROM {events}
) ranked
WHERE pick = 1"
    )
}

/// How far apart a play's length and a song's duration may be, in seconds: 0.01, plus 1e-9 so
/// that pairs exactly 0.01 apart match although `100.01 - 100.00` is not `<= 0.01` in binary
/// floating point. Written out as a decimal, which every dialect reads alike.
pub const DURATION_TOLERANCE: &str = "0.010000001";

/// One row per NextSong event with a user, unique on (user_id, session_id, item_in_session):
/// among duplicates the earliest wins. The song matches a record of the catalogue as kept
/// ([`kept_catalogue`]) with exactly equal title and artist name and a duration within
/// [`DURATION_TOLERANCE`]; the nearest duration wins, then the smallest song_id, and the
/// artist_id comes from that record. songplay_id numbers plays in time order, so it is the
/// same on every run. One pass: each play joined (LEFT) with its candidate songs, ranked within
/// the play, the best kept; the only join is on equal title and artist (a hash join), and no
/// subquery is joined back to the plays, so no plan re-runs a window once per play.
pub(super) fn insert_songplays(d: Dialect, scope: Scope) -> String {
    // An incremental load numbers its plays below zero; the renumbering that follows
    // ([`renumber_songplays`]) gives them, and any play after them, their place in time order.
    let (events, only_incoming, sign) = match scope {
        Scope::All => ("staging_events", String::new(), ""),
        Scope::Incoming => (
            "staging_events",
            format!("\n          AND {}", incoming_play("e")),
            "-",
        ),
        Scope::IncomingOnly => ("incoming_events", String::new(), "-"),
    };
    format!(
        "\
INSERT INTO songplays (songplay_id, start_time, user_id, level, song_id, artist_id, session_id,
                       item_in_session, location, user_agent)
WITH plays AS (
    SELECT ts, user_id, level, song, artist, length, session_id, item_in_session, location,
           user_agent
    FROM (
        SELECT e.*,
               ROW_NUMBER() OVER (
                   PARTITION BY user_id, session_id, item_in_session
                   ORDER BY ts NULLS LAST, {level}, {song},
                            {artist}, length NULLS LAST, {location},
                            {user_agent}
               ) AS pick
        FROM {events} e
        WHERE {next_song} AND user_id IS NOT NULL{only_incoming}
    ) ranked
    WHERE pick = 1
),
catalogue AS (
{catalogue}
),
candidates AS (
    SELECT p.ts, p.user_id, p.level, p.session_id, p.item_in_session, p.location,
           p.user_agent, c.song_id, c.artist_id,
           ROW_NUMBER() OVER (
               PARTITION BY p.user_id, p.session_id, p.item_in_session
               ORDER BY ABS(c.duration - p.length) NULLS LAST, {song_id}
           ) AS pick
    FROM plays p
    LEFT JOIN catalogue c
      ON {title_matches}
     AND {artist_matches}
     AND ABS(c.duration - p.length) <= {DURATION_TOLERANCE}
)
SELECT {sign}ROW_NUMBER() OVER (ORDER BY ts, user_id, session_id, item_in_session),
       {start_time}, user_id, level, song_id, artist_id, session_id,
       item_in_session, location, user_agent
FROM candidates
WHERE pick = 1",
        level = d.text_order("level"),
        song = d.text_order("song"),
        artist = d.text_order("artist"),
        location = d.text_order("location"),
        user_agent = d.text_order("user_agent"),
        next_song = d.text_equal("page", "'NextSong'"),
        catalogue = kept_catalogue(d),
        song_id = d.text_order("c.song_id"),
        title_matches = d.text_equal("c.title", "p.song"),
        artist_matches = d.text_equal("c.artist_name", "p.artist"),
        start_time = d.epoch_ms_to_timestamp("ts"),
    )
}

/// One row per distinct play time; weekday 0 = Sunday, week is the ISO-8601 week. `DATE_PART`
/// rather than `EXTRACT`: the same date parts on every engine, but PostgreSQL's `EXTRACT`
/// computes in `numeric` since version 14 and `date_part` in `double precision`
/// (https://www.postgresql.org/docs/15/functions-datetime.html#FUNCTIONS-DATETIME-EXTRACT):
/// measured at 1M events, the insert took 1.6-2.0 s instead of 2.2-2.3 s. Redshift's
/// `DATE_PART` takes the same date parts as `EXTRACT` and returns DOUBLE
/// (https://docs.aws.amazon.com/redshift/latest/dg/r_DATE_PART_function.html); DuckDB's
/// `date_part` is its `extract`.
pub(super) fn insert_time(scope: Scope) -> String {
    let only_new = match scope {
        Scope::All => "",
        Scope::Incoming | Scope::IncomingOnly => {
            " WHERE start_time >= (SELECT start_time FROM merge_from)"
        }
    };
    format!(
        "\
INSERT INTO time (start_time, hour, day, week, month, year, weekday)
SELECT start_time,
       CAST(DATE_PART('hour', start_time) AS INTEGER),
       CAST(DATE_PART('day', start_time) AS INTEGER),
       CAST(DATE_PART('week', start_time) AS INTEGER),
       CAST(DATE_PART('month', start_time) AS INTEGER),
       CAST(DATE_PART('year', start_time) AS INTEGER),
       CAST(DATE_PART('dow', start_time) AS INTEGER)
FROM (SELECT DISTINCT start_time FROM songplays{only_new}) plays"
    )
}
