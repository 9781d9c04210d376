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
