//! The unit tests of the generated SQL.

use super::*;

#[test]
fn ledger_entries_are_forgotten_by_source_in_bounded_statements() {
    let files: Vec<(String, String)> = (0..5000)
        .map(|i| ("log_data".to_string(), format!("2018/11/{i:05}-it's.json")))
        .chain([("song_data".to_string(), "A/x.json".to_string())])
        .collect();
    let statements = forget_ledger_entries(Dialect::Redshift, &files);
    assert!(statements.len() > 2);
    assert!(statements
        .iter()
        .all(|s| s.len() <= REDSHIFT_STATEMENT_BYTES));
    let named: usize = statements
        .iter()
        .map(|s| s.matches("-it''s.json'").count())
        .sum();
    assert_eq!(named, 5000);
    assert!(statements
        .last()
        .unwrap()
        .contains("source = 'song_data' AND file IN ('A/x.json')"));
    // Standard literals on PostgreSQL and DuckDB: a backslash is itself.
    assert_eq!(text_literal(Dialect::Postgres, "a\\b'c"), "'a\\b''c'");
    assert_eq!(text_literal(Dialect::Redshift, "a\\b'c"), "'a\\\\b''c'");
    assert!(forget_ledger_entries(Dialect::DuckDb, &[]).is_empty());
}

#[test]
fn the_load_lock_is_asked_for_by_its_key() {
    assert_eq!(
        try_load_lock(),
        "SELECT pg_try_advisory_xact_lock(23450707617469516)"
    );
    assert_eq!(
        postgres_lock_timeout(std::time::Duration::ZERO),
        "SET lock_timeout = 1"
    );
    let holder = postgres_load_lock_holder();
    assert!(holder.contains(&format!("l.classid::bigint = {}", LOAD_LOCK_KEY >> 32)));
    assert!(holder.contains(&format!(
        "l.objid::bigint = {}",
        LOAD_LOCK_KEY & 0xffff_ffff
    )));
}
use crate::schema::{SONGPLAYS, STAGING_EVENTS};

#[test]
fn ddl_comes_from_the_schema() {
    let ddl = create_table(&SONGPLAYS, Dialect::DuckDb);
    assert!(ddl.starts_with("CREATE TABLE songplays ("));
    assert!(ddl.contains("start_time TIMESTAMP NOT NULL"));
    assert!(
        !ddl.contains("PRIMARY KEY"),
        "DuckDB checks keys after the transform"
    );
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
    assert!(top.sql(Dialect::DuckDb, 5).ends_with("LIMIT 5"));
    assert!(!analysis_query("plays_by_hour").unwrap().is_ranking());
}

#[test]
fn transform_fills_every_star_table_once() {
    let tables: Vec<_> = transform(Dialect::DuckDb)
        .iter()
        .map(|(t, _)| t.name)
        .collect();
    assert_eq!(tables, ["songs", "artists", "users", "songplays", "time"]);
    assert!(transform(Dialect::DuckDb)[3].1.contains("epoch_ms(ts)"));
}

#[test]
fn after_a_merge_the_checks_read_the_rows_it_changed_and_keep_keys_and_counts_global() {
    use crate::schema::rules::all;
    let rows = |name: &str, scope: CheckScope| {
        let check = all()
            .into_iter()
            .find(|c| c.name() == name)
            .unwrap_or_else(|| panic!("no check {name}"));
        checked_rows(&check, scope)
    };
    for check in all() {
        assert_eq!(
            checked_rows(&check, CheckScope::Everything),
            CheckedRows::All
        );
    }
    let merged = CheckScope::MergedRows;
    // The catalogue is as the last load left it.
    for name in [
        "not_null(songs.song_id)",
        "unique(songs: song_id)",
        "unique(artists: artist_id)",
        "relationship(songs(artist_id) in artists(artist_id))",
    ] {
        assert_eq!(rows(name, merged), CheckedRows::Unchanged, "{name}");
    }
    // A duplicate key can pair a changed row with an unchanged one.
    for name in [
        "unique(songplays: songplay_id)",
        "unique(songplays: user_id, session_id, item_in_session)",
    ] {
        assert_eq!(rows(name, merged), CheckedRows::All, "{name}");
    }
    // Unless the key holds the column that marks the changed rows: both rows of a duplicate
    // are then changed, or neither. Every dialect's count reads only those rows.
    for name in ["unique(users: user_id)", "unique(time: start_time)"] {
        let CheckedRows::Changed(condition) = rows(name, merged) else {
            panic!("{name}: {:?}", rows(name, merged));
        };
        let check = all().into_iter().find(|c| c.name() == name).unwrap();
        for d in [Dialect::DuckDb, Dialect::Postgres, Dialect::Redshift] {
            let counted = check_counts(&check, d, merged);
            assert!(counted.contains(&condition), "{name} {d:?}: {counted}");
            assert!(
                offending_rows(&check, d, merged).contains(&condition),
                "{name} {d:?}"
            );
        }
    }
    // The plays counted against the count before the merge, not staging read again.
    let reconciliation = all().pop().unwrap();
    assert_eq!(
        checked_rows(&reconciliation, merged),
        CheckedRows::PlaysAdded
    );
    let counted = check_counts(&reconciliation, Dialect::Postgres, merged);
    assert!(
        counted.contains("FROM merge_from") && !counted.contains("staging_events"),
        "{counted}"
    );
    let changed = |name: &str| match rows(name, merged) {
        CheckedRows::Changed(condition) => condition,
        other => panic!("{name}: {other:?}"),
    };
    assert!(changed("not_null(songplays.start_time)")
        .contains("t.start_time IS NULL OR t.start_time >= (SELECT start_time FROM merge_from)"));
    assert!(changed("accepted_values(users.level: free, paid)").contains("incoming_events"));
    // A play can lose its user when the user changed, not only when the play did.
    let users = changed("relationship(songplays(user_id) in users(user_id))");
    assert!(
        users.contains("merge_from")
            && users.contains("t.user_id IN (SELECT user_id FROM incoming_events"),
        "{users}"
    );
    let time = changed("relationship(songplays(start_time) in time(start_time))");
    assert_eq!(time.matches("merge_from").count(), 1, "{time}");
    let songs = changed("relationship(songplays(song_id) in songs(song_id))");
    assert!(!songs.contains("incoming_events"), "{songs}");
    // The statements read those rows.
    let check = all()
        .into_iter()
        .find(|c| c.name() == "relationship(songplays(user_id) in users(user_id))")
        .unwrap();
    for d in [Dialect::DuckDb, Dialect::Postgres, Dialect::Redshift] {
        assert!(check_counts(&check, d, merged).contains(&users), "{d:?}");
        assert!(offending_rows(&check, d, merged).contains(&users), "{d:?}");
        assert!(!check_counts(&check, d, CheckScope::Everything).contains("merge_from"));
    }
}

#[test]
fn a_merge_reads_its_earliest_time_as_a_literal_where_the_dialect_pins_it() {
    let time = Some("2018-11-30 00:07:57.796");
    for d in [Dialect::DuckDb, Dialect::Postgres] {
        assert!(pins_merge_from_time(d));
        let steps = merge_incoming_events(d);
        let made = steps
            .iter()
            .position(|s| s.sql.starts_with(CREATE_MERGE_FROM))
            .expect("a step makes merge_from");
        let later: Vec<String> = steps[made + 1..]
            .iter()
            .map(|s| pin_merge_from_time(&s.sql, d, time).unwrap())
            .collect();
        // Every later statement that read the time from merge_from now holds the value.
        assert!(later
            .iter()
            .all(|s| !s.contains("SELECT start_time FROM merge_from")));
        assert!(
            later
                .iter()
                .filter(|s| s.contains("CAST('2018-11-30 00:07:57.796' AS TIMESTAMP)"))
                .count()
                >= 2,
            "{later:#?}"
        );
        let moved = pin_merge_from_time(PLAYS_MOVED, d, time).unwrap();
        assert!(moved.contains("start_time >= CAST('2018-11-30 00:07:57.796' AS TIMESTAMP)"));
        // NULL (no play came and none was replaced) compares as the subquery's NULL did.
        assert!(pin_merge_from_time(PLAYS_MOVED, d, None)
            .unwrap()
            .contains(">= CAST(NULL AS TIMESTAMP)"));
        // A value that could end the literal is refused, never written into the statement.
        for bad in ["2018-11-30'; DROP TABLE songplays; --", "", "2018\\'"] {
            assert!(
                pin_merge_from_time(PLAYS_MOVED, d, Some(bad)).is_err(),
                "{bad}"
            );
        }
        // A statement that does not read it is left as it is.
        assert_eq!(
            pin_merge_from_time(PLAYS_REPLACED, d, Some("x")).unwrap(),
            PLAYS_REPLACED
        );
    }
    // Redshift keeps the subquery its statements were checked with.
    assert!(!pins_merge_from_time(Dialect::Redshift));
    assert_eq!(
        pin_merge_from_time(PLAYS_MOVED, Dialect::Redshift, time).unwrap(),
        PLAYS_MOVED
    );
}

#[test]
fn postgres_keeps_an_index_on_the_play_times_and_only_postgres() {
    use crate::schema::{SONGPLAYS, TIME};
    let indexes = secondary_indexes(&SONGPLAYS, Dialect::Postgres);
    assert_eq!(indexes, vec![SONGPLAYS_START_TIME]);
    assert!(secondary_indexes(&TIME, Dialect::Postgres).is_empty());
    for d in [Dialect::DuckDb, Dialect::Redshift] {
        assert!(secondary_indexes(&SONGPLAYS, d).is_empty());
        // No statement of the merge names an index where there is none.
        assert!(merge_incoming_events(d)
            .iter()
            .all(|s| !s.sql.contains("INDEX")));
    }
    assert!(merge_incoming_events(Dialect::Postgres)[0]
        .sql
        .starts_with("CREATE INDEX IF NOT EXISTS sparkify_songplays_start_time ON songplays"));
}

#[test]
fn a_postgres_merge_keeps_nested_loops_off_only_around_its_songplays_inserts() {
    let steps = merge_incoming_events(Dialect::Postgres);
    let inserts: Vec<usize> = steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.sql.starts_with("INSERT INTO songplays"))
        .map(|(at, _)| at)
        .collect();
    assert_eq!(inserts.len(), 2);
    for at in inserts {
        assert_eq!(steps[at - 1].sql, "SET LOCAL enable_nestloop = off");
        assert_eq!(steps[at + 1].sql, "SET LOCAL enable_nestloop = on");
        assert_eq!(steps[at - 1].when, steps[at].when);
        assert_eq!(steps[at + 1].when, steps[at].when);
    }
    let made = steps
        .iter()
        .position(|s| s.sql.starts_with(CREATE_MERGE_FROM))
        .unwrap();
    assert_eq!(steps[made - 1].sql, "SET LOCAL enable_nestloop = on");
    for d in [Dialect::DuckDb, Dialect::Redshift] {
        assert!(merge_incoming_events(d)
            .iter()
            .all(|s| !s.sql.contains("enable_nestloop")));
    }
}
