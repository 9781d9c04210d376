//! Every statement the redshift engine sends, pinned by a golden file and checked by an
//! independent parser (sqlparser's Redshift dialect) wherever that parser knows the statement.
//! A real cluster cannot be reached from the tests; this is what guards the SQL it would run.
//! `UPDATE_GOLDEN=1 cargo test --test redshift_sql` rewrites the golden file after a deliberate
//! change; review its diff.

use sparkify::record::{Field, Reject};
use sparkify::schema::{
    ALL_TABLES, INCOMING_EVENTS, INCOMING_SONGS, LOADED_FILES, STAGING_EVENTS, STAGING_SONGS,
    STAR_TABLES,
};
use sparkify::sql::{self, CheckScope, CheckedRows, Dialect, S3Copy};
use sqlparser::dialect::RedshiftSqlDialect;
use sqlparser::parser::Parser;

const GOLDEN: &str = "tests/golden/redshift.sql";
const ROLE: &str = "arn:aws:iam::123456789012:role/sparkify-redshift-s3-read";

/// Every generated statement, named.
fn statements() -> Vec<(String, String)> {
    let mut all = Vec::new();
    for table in ALL_TABLES {
        all.push((format!("drop {}", table.name), sql::drop_table(table)));
        all.push((
            format!("create {}", table.name),
            sql::create_table(table, Dialect::Redshift),
        ));
    }
    all.push(("existing tables".into(), sql::existing_tables(&ALL_TABLES)));
    for table in ALL_TABLES {
        all.push((format!("mark {}", table.name), sql::mark_table(table)));
    }
    all.push((
        "the toolkit's marks".into(),
        sql::table_marks(Dialect::Redshift, &ALL_TABLES),
    ));
    all.push((
        "the columns of unmarked tables".into(),
        sql::table_columns(&ALL_TABLES),
    ));
    for statement in sql::use_schema("sparkify", true) {
        all.push(("use [WAREHOUSE] SCHEMA".into(), statement));
    }
    for statement in sql::forget_ledger_entries(
        Dialect::Redshift,
        &[
            ("log_data".into(), "2018/11/2018-11-01-events.json".into()),
            ("log_data".into(), "it's \\ odd.json".into()),
            ("song_data".into(), "A/B/C/TRABC.json".into()),
        ],
    ) {
        all.push(("forget ledger entries".into(), statement));
    }
    all.push(("rejects".into(), sql::rejects(100)));
    all.push(("matched plays".into(), sql::MATCHED_PLAYS.to_string()));
    for statement in sql::lock_for_load(Dialect::Redshift, std::time::Duration::ZERO) {
        all.push(("lock for load".into(), statement));
    }
    for table in [&STAGING_EVENTS, &STAGING_SONGS] {
        all.push((format!("delete {}", table.name), sql::delete_all(table)));
    }
    let copy = |table, from, json| {
        sql::copy_from_s3(&S3Copy {
            table,
            from,
            manifest: false,
            iam_role: ROLE,
            json,
            region: "us-west-2",
            max_errors: 0,
        })
        .unwrap()
    };
    all.push((
        "copy staging_songs".into(),
        copy(
            &STAGING_SONGS,
            "s3://udacity-dend/song_data/",
            "auto ignorecase",
        ),
    ));
    all.push((
        "copy staging_events".into(),
        copy(
            &STAGING_EVENTS,
            "s3://udacity-dend/log_data/",
            "s3://udacity-dend/log_json_path.json",
        ),
    ));
    all.push((
        "copy staging_songs through a manifest".into(),
        sql::copy_from_s3(&S3Copy {
            table: &STAGING_SONGS,
            from: "s3://my-bucket/sparkify-manifests/sparkify-staging_songs.manifest",
            manifest: true,
            iam_role: ROLE,
            json: "auto ignorecase",
            region: "us-west-2",
            max_errors: 10,
        })
        .unwrap(),
    ));
    for statement in
        sql::redshift_reject_unloadable(&STAGING_EVENTS, "log_data", "s3://udacity-dend/log_data/")
            .unwrap()
    {
        all.push(("events the local loader rejects".into(), statement));
    }
    for statement in
        sql::redshift_reject_unloadable(&STAGING_SONGS, "song_data", "s3://udacity-dend/song_data/")
            .unwrap()
    {
        all.push(("songs the local loader rejects".into(), statement));
    }
    // An incremental load: the new files into the incoming tables, then the merge.
    all.push((
        "copy incoming_events through a manifest".into(),
        sql::copy_from_s3(&S3Copy {
            table: &INCOMING_EVENTS,
            from: "s3://my-bucket/sparkify-manifests/sparkify-incoming_events.manifest",
            manifest: true,
            iam_role: ROLE,
            json: "s3://udacity-dend/log_json_path.json",
            region: "us-west-2",
            max_errors: 0,
        })
        .unwrap(),
    ));
    for statement in sql::redshift_reject_unloadable(
        &INCOMING_EVENTS,
        "log_data",
        "s3://my-bucket/sparkify-manifests/sparkify-incoming_events.manifest",
    )
    .unwrap()
    {
        all.push(("incoming events the local loader rejects".into(), statement));
    }
    all.push(("ledger entries".into(), sql::ledger_entries()));
    all.push((
        "forget unreadable files".into(),
        sql::forget_unreadable_files(),
    ));
    for statement in sql::insert_rows_redshift(
        &LOADED_FILES,
        &[vec![
            Field::Text("log_data".into()),
            Field::Text("s3://udacity-dend/log_data/2018/11/2018-11-30-events.json".into()),
            Field::Int(31_507),
            Field::Text("\"9a0364b9e99bb480dd25e1f0284c8555\"".into()),
            Field::Null,
            Field::Null,
            Field::Int(0),
            Field::Text("2026-11-28T18:00:00Z".into()),
        ]],
    ) {
        all.push(("insert ledger entries".into(), statement));
    }
    for (staging, incoming) in [
        (&STAGING_SONGS, &INCOMING_SONGS),
        (&STAGING_EVENTS, &INCOMING_EVENTS),
    ] {
        all.push((
            format!("append {}", incoming.name),
            sql::append_all(staging, incoming),
        ));
    }
    for step in sql::merge_incoming_events(Dialect::Redshift) {
        let table = step.table.map_or("bookkeeping", |t| t.name);
        all.push((format!("merge {table}"), step.sql));
    }
    all.push(("merge plays replaced".into(), sql::PLAYS_REPLACED.into()));
    all.push(("merge plays moved".into(), sql::PLAYS_MOVED.into()));
    all.push((
        "load history staging_events".into(),
        sql::redshift_copy_outcome(&STAGING_EVENTS),
    ));
    all.push(("load errors".into(), sql::redshift_load_errors(5001)));
    all.push((
        "raw lines provisioned".into(),
        sql::REDSHIFT_RAW_LINES.into(),
    ));
    for statement in sql::insert_rejects_redshift(&[Reject {
        source: "log_data",
        file: "s3://udacity-dend/log_data/2018/11/2018-11-01-events.json".into(),
        line: Some(7),
        reason: "userid: Invalid digit, Value 'x'".into(),
        raw_text: "{\"userId\": \"x\\\\y\"}\tend".into(),
    }]) {
        all.push(("insert rejects".into(), statement));
    }
    for (table, statement) in sql::transform(Dialect::Redshift) {
        all.push((format!("transform {}", table.name), statement));
    }
    for table in STAR_TABLES {
        all.push((format!("count {}", table.name), sql::count_rows(table)));
    }
    let checks = sparkify::checks::all();
    // Every check on every row, then what differs after a merge: the rows it changed.
    for scope in [CheckScope::Everything, CheckScope::MergedRows] {
        let differs = |check: &sparkify::checks::Check| {
            scope == CheckScope::Everything
                || matches!(
                    sql::checked_rows(check, scope),
                    CheckedRows::Changed(_) | CheckedRows::PlaysAdded
                )
        };
        let after = match scope {
            CheckScope::Everything => "",
            CheckScope::MergedRows => " after a merge",
        };
        for (table, members) in sparkify::checks::row_checks_by_table(&checks) {
            if !differs(members[0].1) {
                continue;
            }
            let of_table: Vec<_> = members.into_iter().map(|(_, check)| check).collect();
            all.push((
                format!("row checks of {}{after}", table.name),
                sql::row_check_counts(table, &of_table, Dialect::Redshift, scope),
            ));
        }
        for check in &checks {
            if !differs(check) {
                continue;
            }
            if !sql::is_row_check(check) {
                all.push((
                    format!("check {}{after}", check.name()),
                    sql::check_counts(check, Dialect::Redshift, scope),
                ));
            }
            all.push((
                format!("offending rows {}{after}", check.name()),
                sql::offending_rows(check, Dialect::Redshift, scope),
            ));
        }
    }
    all.push(("end merge".into(), sql::END_MERGE.into()));
    for query in sql::ANALYSIS_QUERIES {
        all.push((
            format!("analysis {}", query.name),
            query.sql(Dialect::Redshift, 5),
        ));
    }
    all
}

fn render(statements: &[(String, String)]) -> String {
    statements
        .iter()
        .map(|(name, sql)| format!("-- {name}\n{sql};\n"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn generated_redshift_sql_matches_the_golden_file() {
    let rendered = render(&statements());
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN);
    if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &rendered).unwrap();
    }
    let golden = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        golden == rendered,
        "the generated Redshift SQL differs from {GOLDEN}; if the change is meant, rerun with \
         UPDATE_GOLDEN=1 and review the diff"
    );
}

/// Clauses sqlparser's Redshift dialect does not know, by the statements (name prefix) that use
/// them: such a statement must fail to parse whole (so this list shrinks when the parser learns
/// the clause) and parse once that clause's line is left out. Every other statement must parse.
const PARSER_GAPS: &[(&str, &str)] = &[
    // sqlparser 0.64 parses COPY's IAM_ROLE, FORMAT AS JSON and REGION, but not MAXERROR.
    ("copy ", "MAXERROR"),
];

/// Statements sqlparser's Redshift dialect does not know at all, by name prefix, and the
/// dialect whose syntax Redshift's is for them: such a statement must fail to parse as
/// Redshift (so this list shrinks when the parser learns it) and parse in that dialect. They
/// also run on PostgreSQL through the redshift engine (tests/postgres.rs).
const UNKNOWN_TO_THE_PARSER: &[&str] = &[
    // COMMENT ON TABLE t IS 'text' is PostgreSQL's statement
    // (https://docs.aws.amazon.com/redshift/latest/dg/r_COMMENT.html).
    "mark ",
];

#[test]
fn redshift_sql_parses_with_sqlparser() {
    let parse = |sql: &str| Parser::parse_sql(&RedshiftSqlDialect {}, sql);
    let mut failures = Vec::new();
    for (name, statement) in statements() {
        if UNKNOWN_TO_THE_PARSER.iter().any(|p| name.starts_with(p)) {
            let as_postgres =
                Parser::parse_sql(&sqlparser::dialect::PostgreSqlDialect {}, &statement);
            match (parse(&statement), as_postgres) {
                (Ok(_), _) => failures.push(format!(
                    "{name}: parses now as Redshift; drop it from UNKNOWN_TO_THE_PARSER"
                )),
                (Err(_), Err(e)) => {
                    failures.push(format!("{name} as PostgreSQL: {e}\n{statement}"))
                }
                (Err(_), Ok(_)) => {}
            }
            continue;
        }
        let gap = PARSER_GAPS
            .iter()
            .find(|(prefix, _)| name.starts_with(prefix));
        match (parse(&statement), gap) {
            (Ok(_), None) => {}
            (Err(e), None) => failures.push(format!("{name}: {e}\n{statement}")),
            (Ok(_), Some((_, clause))) => failures.push(format!(
                "{name}: parses now with {clause}; drop it from PARSER_GAPS"
            )),
            (Err(_), Some((_, clause))) => {
                assert!(statement.contains(clause), "{name} has no {clause}");
                let rest: Vec<&str> = statement
                    .lines()
                    .filter(|line| !line.starts_with(clause))
                    .collect();
                if let Err(e) = parse(&rest.join("\n")) {
                    failures.push(format!("{name} without {clause}: {e}\n{statement}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn config_values_are_quoted_never_pasted() {
    let statement = sql::copy_from_s3(&S3Copy {
        table: &STAGING_SONGS,
        from: "s3://bucket/it's\\here",
        iam_role: "arn:aws:iam::1:role/r' IAM_ROLE 'other",
        json: "auto ignorecase",
        region: "",
        max_errors: 3,
        manifest: false,
    })
    .unwrap();
    assert!(
        statement.contains("FROM 's3://bucket/it''s\\\\here'"),
        "{statement}"
    );
    assert!(
        statement.contains("IAM_ROLE 'arn:aws:iam::1:role/r'' IAM_ROLE ''other'"),
        "{statement}"
    );
    assert!(!statement.contains("REGION"), "{statement}");
    // Three rejects tolerated: Redshift fails when the errors reach MAXERROR.
    assert!(statement.ends_with("MAXERROR 4"), "{statement}");
    let err = sql::copy_from_s3(&S3Copy {
        table: &STAGING_SONGS,
        from: "s3://bucket/x\n; DROP TABLE songs",
        iam_role: ROLE,
        json: "auto ignorecase",
        region: "",
        max_errors: 0,
        manifest: false,
    })
    .unwrap_err();
    assert!(err.contains("control character"), "{err}");
}

#[test]
fn maxerror_lets_exactly_max_errors_rejects_through() {
    assert_eq!(sql::redshift_maxerror(0), Ok(0));
    assert_eq!(sql::redshift_maxerror(1), Ok(2));
    assert_eq!(sql::redshift_maxerror(99_999), Ok(100_000));
    let err = sql::redshift_maxerror(100_000).unwrap_err();
    assert!(err.contains("at most 99999"), "{err}");
}

#[test]
fn rejects_are_inserted_in_statements_of_at_most_64_kib() {
    let rejects: Vec<Reject> = (0..2_000)
        .map(|line| Reject {
            source: "log_data",
            file: format!("s3://b/log_data/{line}.json"),
            line: Some(line),
            reason: "ts: Invalid digit, Value 'a'".into(),
            raw_text: "x".repeat(300),
        })
        .collect();
    let statements = sql::insert_rejects_redshift(&rejects);
    assert!(statements.len() > 1);
    assert!(statements
        .iter()
        .all(|s| s.len() <= sql::REDSHIFT_STATEMENT_BYTES && s.starts_with("INSERT INTO")));
    let rows: usize = statements.iter().map(|s| s.lines().count() - 1).sum();
    assert_eq!(rows, 2_000);
    assert!(sql::insert_rejects_redshift(&[]).is_empty());
}

#[test]
fn redshift_text_is_exact_about_trailing_blanks_and_case() {
    let songplays = sql::transform(Dialect::Redshift)
        .into_iter()
        .find(|(t, _)| t.name == "songplays")
        .unwrap()
        .1;
    assert!(
        songplays.contains("(c.title = p.song AND LENGTH(c.title) = LENGTH(p.song))"),
        "{songplays}"
    );
    assert!(songplays.contains("<= 0.010000001"), "{songplays}");
    let ddl = sql::create_table(&sparkify::schema::SONGS, Dialect::Redshift);
    assert!(
        ddl.contains("title VARCHAR(512) COLLATE CASE_SENSITIVE"),
        "{ddl}"
    );
}
