//! The data-quality rules the star schema promises, as dbt's schema tests declare them: keys
//! not null and unique, every reference found, values among those accepted, and every play of
//! staging in `songplays` once. They are data about the tables, so they live beside them; the
//! SQL that tests them is in [`crate::sql::check_counts`] and running them in [`crate::checks`].

use super::{Table, ARTISTS, SONGPLAYS, SONGS, STAR_TABLES, TIME, USERS};

/// What is accepted in a column.
#[derive(Debug, Clone, Copy)]
pub enum Accepted {
    /// One of these texts (NULL is left to the not-null checks, as dbt's `accepted_values`).
    Texts(&'static [&'static str]),
    /// An integer from the first to the second, inclusive.
    Range(i64, i64),
}

/// One data-quality rule.
#[derive(Debug, Clone, Copy)]
pub enum Check {
    /// No row has NULL in the column.
    NotNull {
        table: &'static Table,
        column: &'static str,
    },
    /// No two rows share a value of the key.
    Unique {
        table: &'static Table,
        key: &'static [&'static str],
    },
    /// Every row of `child` whose `columns` are all set finds a row of `parent` with the same
    /// values in the columns of the same names.
    Relationship {
        child: &'static Table,
        columns: &'static [&'static str],
        parent: &'static Table,
    },
    /// Every value of the column is accepted.
    AcceptedValues {
        table: &'static Table,
        column: &'static str,
        accepted: Accepted,
    },
    /// `songplays` holds one row per distinct play of staging (a NextSong event with a user,
    /// by its natural key), and no other.
    Reconciliation,
}

/// The references of the star schema, child columns first.
const RELATIONSHIPS: [(&Table, &[&str], &Table); 6] = [
    (&SONGPLAYS, &["user_id"], &USERS),
    (&SONGPLAYS, &["song_id"], &SONGS),
    (&SONGPLAYS, &["artist_id"], &ARTISTS),
    // A play's artist is the artist of the song it matched, not another record's.
    (&SONGPLAYS, &["song_id", "artist_id"], &SONGS),
    (&SONGPLAYS, &["start_time"], &TIME),
    (&SONGS, &["artist_id"], &ARTISTS),
];

const LEVELS: Accepted = Accepted::Texts(&["free", "paid"]);

const ACCEPTED: [(&Table, &str, Accepted); 7] = [
    (&SONGPLAYS, "level", LEVELS),
    (&USERS, "level", LEVELS),
    (&TIME, "hour", Accepted::Range(0, 23)),
    (&TIME, "day", Accepted::Range(1, 31)),
    (&TIME, "week", Accepted::Range(1, 53)),
    (&TIME, "month", Accepted::Range(1, 12)),
    // 0 = Sunday.
    (&TIME, "weekday", Accepted::Range(0, 6)),
];

/// Every check, in the order they run: not null, unique, relationships, accepted values,
/// reconciliation. Not null covers every column of a primary or unique key, and every
/// reference column the schema requires.
pub fn all() -> Vec<Check> {
    let mut checks = Vec::new();
    for table in STAR_TABLES {
        let mut columns = table.key_columns();
        let references = RELATIONSHIPS
            .iter()
            .filter(|(child, _, _)| child.name == table.name)
            .flat_map(|(_, columns, _)| columns.iter().copied())
            .filter(|column| is_required(table, column));
        for column in references {
            if !columns.contains(&column) {
                columns.push(column);
            }
        }
        checks.extend(
            columns
                .into_iter()
                .map(|column| Check::NotNull { table, column }),
        );
    }
    for table in STAR_TABLES {
        for key in [table.primary_key, table.unique] {
            if !key.is_empty() {
                checks.push(Check::Unique { table, key });
            }
        }
    }
    checks.extend(
        RELATIONSHIPS
            .iter()
            .map(|&(child, columns, parent)| Check::Relationship {
                child,
                columns,
                parent,
            }),
    );
    checks.extend(
        ACCEPTED
            .iter()
            .map(|&(table, column, accepted)| Check::AcceptedValues {
                table,
                column,
                accepted,
            }),
    );
    checks.push(Check::Reconciliation);
    checks
}

fn is_required(table: &Table, column: &str) -> bool {
    table.columns.iter().any(|c| c.name == column && c.required)
}

impl Check {
    /// The check's name, as the summary and errors show it.
    pub fn name(&self) -> String {
        match self {
            Check::NotNull { table, column } => format!("not_null({}.{column})", table.name),
            Check::Unique { table, key } => format!("unique({}: {})", table.name, key.join(", ")),
            Check::Relationship {
                child,
                columns,
                parent,
            } => {
                let columns = columns.join(", ");
                format!(
                    "relationship({}({columns}) in {}({columns}))",
                    child.name, parent.name
                )
            }
            Check::AcceptedValues {
                table,
                column,
                accepted,
            } => {
                let values = match accepted {
                    Accepted::Texts(values) => values.join(", "),
                    Accepted::Range(low, high) => format!("{low}-{high}"),
                };
                format!("accepted_values({}.{column}: {values})", table.name)
            }
            Check::Reconciliation => {
                "reconciliation(songplays = distinct NextSong plays in staging_events)".into()
            }
        }
    }

    /// The table whose rows the check reads and counts.
    pub fn table(&self) -> &'static Table {
        match self {
            Check::NotNull { table, .. }
            | Check::Unique { table, .. }
            | Check::AcceptedValues { table, .. } => table,
            Check::Relationship { child, .. } => child,
            Check::Reconciliation => &SONGPLAYS,
        }
    }
}
