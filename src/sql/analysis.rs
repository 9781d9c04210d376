//! The business questions `analysis` answers, each written once with placeholders for what the
//! dialects spell differently, and the counts the summaries read.

use crate::schema::Table;

use super::Dialect;

/// The plays of songplays and how many of them matched a song of the catalogue.
pub const MATCHED_PLAYS: &str = "SELECT COUNT(*), COUNT(song_id) FROM songplays";

pub fn count_rows(table: &Table) -> String {
    format!("SELECT COUNT(*) FROM {}", table.name)
}

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

    /// The question in `d`'s SQL. In the text, `{limit}` is the ranking's length, and text
    /// keys are written `{key:c}` (grouped by, [`Dialect::text_key`]), `{equal:a:b}`
    /// ([`Dialect::text_equal`]) and `{order:c}` (a tie-break, [`Dialect::text_order`]); a
    /// timestamp's day as `YYYY-MM-DD` text is `{day:expression}` ([`Dialect::day_text`]).
    pub fn sql(&self, d: Dialect, limit: u32) -> String {
        let mut out = String::new();
        let mut rest = self.sql;
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let end = start + rest[start..].find('}').expect("a closed placeholder");
            let parts: Vec<&str> = rest[start + 1..end].split(':').collect();
            out.push_str(&match parts.as_slice() {
                ["limit"] => limit.to_string(),
                ["key", column] => d.text_key(column),
                ["equal", a, b] => d.text_equal(a, b),
                ["order", column] => d.text_order_with(column, ""),
                ["day", expression] => d.day_text(expression),
                other => panic!("unknown placeholder {other:?} in {}", self.name),
            });
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }
}

/// The first and last day with plays in a period (a week, month or year), as `YYYY-MM-DD`: the
/// charts mark a first or last period the plays cover only in part.
macro_rules! days_played {
    () => {
        "{day:MIN(sp.start_time)} AS first_day, {day:MAX(sp.start_time)} AS last_day"
    };
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
      HAVING COUNT(DISTINCT CASE WHEN level IN ('free', 'paid') AND LENGTH(level) = 4
                                 THEN level END) = 2) p
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
    AnalysisQuery {
        name: "plays_by_year",
        title: "Plays by year",
        sql: concat!(
            "SELECT t.year, ",
            days_played!(),
            ", COUNT(*) AS plays
FROM songplays sp JOIN time t ON t.start_time = sp.start_time
GROUP BY t.year
ORDER BY t.year"
        ),
    },
    plays_by!("plays_by_day", "Plays by day of the month", "day"),
    AnalysisQuery {
        name: "plays_by_week",
        title: "Plays by ISO week",
        // ISO year from the calendar year: the last days of December can be in week 1 of the
        // next year, the first days of January in week 52 or 53 of the last.
        sql: "\
SELECT iso_year, week, {day:MIN(start_time)} AS first_day, {day:MAX(start_time)} AS last_day,
       COUNT(*) AS plays
FROM (SELECT CASE WHEN t.month = 12 AND t.week = 1 THEN t.year + 1
                  WHEN t.month = 1 AND t.week >= 52 THEN t.year - 1
                  ELSE t.year END AS iso_year,
             t.week, sp.start_time
      FROM songplays sp JOIN time t ON t.start_time = sp.start_time) weeks
GROUP BY iso_year, week
ORDER BY iso_year, week",
    },
    AnalysisQuery {
        name: "plays_by_month",
        title: "Plays by month",
        // By year and month, as the weeks: November 2018 is not November 2019.
        sql: concat!(
            "SELECT t.year, t.month, ",
            days_played!(),
            ", COUNT(*) AS plays
FROM songplays sp JOIN time t ON t.start_time = sp.start_time
GROUP BY t.year, t.month
ORDER BY t.year, t.month"
        ),
    },
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
      GROUP BY {key:artist_id}) p
JOIN artists a ON {equal:a.artist_id:p.artist_id}
ORDER BY p.plays DESC, {order:a.artist_id}
LIMIT {limit}",
    },
    AnalysisQuery {
        name: "top_songs",
        title: "Most played songs",
        sql: "\
SELECT s.song_id, s.title, a.name AS artist, p.plays
FROM (SELECT song_id, COUNT(*) AS plays FROM songplays WHERE song_id IS NOT NULL
      GROUP BY {key:song_id}) p
JOIN songs s ON {equal:s.song_id:p.song_id}
LEFT JOIN artists a ON {equal:a.artist_id:s.artist_id}
ORDER BY p.plays DESC, {order:s.song_id}
LIMIT {limit}",
    },
];

/// The question called `name`.
pub fn analysis_query(name: &str) -> Option<&'static AnalysisQuery> {
    ANALYSIS_QUERIES.iter().find(|q| q.name == name)
}
