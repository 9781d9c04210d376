//! Which COPY format feeds PostgreSQL staging faster: the text format the postgres engine uses
//! (`PostgresWarehouse::append`), or the binary format, encoded here from the same Arrow
//! batches. Run it with `cargo bench --bench copy_format -- [--events N]` against the server of
//! `DATABASE_URL` (default 127.0.0.1:5432 as postgres); it works in a database of its own.
//!
//! Each format loads the same staging_events batches three times into an emptied table inside
//! a transaction (as etl does); the best time counts.

use std::time::Instant;

mod common;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, Int64Type, TimestampMillisecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use bytes::{BufMut, Bytes, BytesMut};
use common::BenchDatabase;
use futures_util::SinkExt;
use sparkify::batch::record_batch;
use sparkify::config::Config;
use sparkify::gen_data::{generate, GenOptions};
use sparkify::jsonpaths::JsonPaths;
use sparkify::load::parse_file;
use sparkify::parse::SourceKind;
use sparkify::schema::STAGING_EVENTS;
use sparkify::source::discover_dir;
use sparkify::sql::{self, Dialect};
use sparkify::warehouse::{PostgresWarehouse, Warehouse};
use tokio_postgres::NoTls;

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;

/// One batch in PostgreSQL's binary COPY encoding (rows only; header and trailer apart).
fn encode_binary(batch: &RecordBatch, out: &mut BytesMut) {
    for row in 0..batch.num_rows() {
        out.put_i16(batch.num_columns() as i16);
        for column in batch.columns() {
            if column.is_null(row) {
                out.put_i32(-1);
                continue;
            }
            match column.data_type() {
                DataType::Utf8 => {
                    let text = column.as_string::<i32>().value(row);
                    out.put_i32(text.len() as i32);
                    out.put_slice(text.as_bytes());
                }
                DataType::Int32 => {
                    out.put_i32(4);
                    out.put_i32(column.as_primitive::<Int32Type>().value(row));
                }
                DataType::Int64 => {
                    out.put_i32(8);
                    out.put_i64(column.as_primitive::<Int64Type>().value(row));
                }
                DataType::Float64 => {
                    out.put_i32(8);
                    out.put_f64(column.as_primitive::<Float64Type>().value(row));
                }
                DataType::Timestamp(TimeUnit::Millisecond, None) => {
                    let ms = column.as_primitive::<TimestampMillisecondType>().value(row);
                    out.put_i32(8);
                    out.put_i64(ms * 1000 - PG_EPOCH_OFFSET_US);
                }
                other => panic!("no {other} columns in staging"),
            }
        }
    }
}

fn main() {
    let mut events = 200_000usize;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--events" => {
                events = args[i + 1].parse().expect("--events N");
                i += 2;
            }
            "--bench" => i += 1,
            other => panic!("unknown argument {other}: use --events N"),
        }
    }
    let dir = std::env::temp_dir().join(format!("sparkify-copy-bench-{events}"));
    if !dir.join("log_json_path.json").exists() {
        eprintln!("generating {} ...", dir.display());
        generate(&GenOptions {
            songs: 1000,
            events,
            days: 30,
            seed: 42,
            out: dir.clone(),
            force: true,
        })
        .expect("generate dataset");
    }
    let mapping = JsonPaths::load(
        &dir.join("log_json_path.json"),
        STAGING_EVENTS.columns.len(),
    )
    .expect("JSONPaths");
    let logs = discover_dir(
        &dir.join("log_data"),
        "bench",
        &indicatif::ProgressBar::hidden(),
    )
    .expect("log files");
    let contents = logs.read(&logs.files, u64::MAX);
    let mut rows = Vec::new();
    for (file, contents) in logs.files.iter().zip(&contents) {
        let parsed = parse_file(file, contents, SourceKind::Log, Some(&mapping)).expect("readable");
        rows.extend(parsed.rows);
    }
    let batches: Vec<RecordBatch> = rows
        .chunks(65_536)
        .map(|chunk| record_batch(&STAGING_EVENTS, chunk).expect("batch"))
        .collect();
    let total: usize = batches.iter().map(|b| b.num_rows()).sum();

    // A database of its own.
    let database = BenchDatabase::create("copy").expect("a PostgreSQL server");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = Config::parse(
        &format!("[CLUSTER]\n{}\nSSLMODE=disable\n", database.cluster()),
        "bench.cfg".as_ref(),
        "/".as_ref(),
    )
    .unwrap();
    let mut warehouse = PostgresWarehouse::connect(&config.cluster).expect("connect");
    warehouse
        .execute(&sql::create_table(&STAGING_EVENTS, Dialect::Postgres))
        .unwrap();

    let text = || {
        let mut warehouse = PostgresWarehouse::connect(&config.cluster).expect("connect");
        warehouse.begin().unwrap();
        warehouse
            .execute(&sql::delete_all(&STAGING_EVENTS))
            .unwrap();
        let start = Instant::now();
        for batch in &batches {
            warehouse.append(&STAGING_EVENTS, batch).unwrap();
        }
        let seconds = start.elapsed().as_secs_f64();
        warehouse.commit().unwrap();
        seconds
    };
    let binary = || {
        let mut server = database.server.clone();
        server.dbname(&database.name);
        runtime.block_on(async {
            let (client, connection) = server.connect(NoTls).await.unwrap();
            tokio::spawn(connection);
            client.batch_execute("BEGIN").await.unwrap();
            client
                .batch_execute(&sql::delete_all(&STAGING_EVENTS))
                .await
                .unwrap();
            let copy = format!("{} (FORMAT binary)", sql::copy_from_stdin(&STAGING_EVENTS));
            let start = Instant::now();
            let sink = client.copy_in::<_, Bytes>(copy.as_str()).await.unwrap();
            futures_util::pin_mut!(sink);
            let mut piece = BytesMut::new();
            piece.put_slice(b"PGCOPY\n\xff\r\n\0");
            piece.put_i32(0);
            piece.put_i32(0);
            for batch in &batches {
                encode_binary(batch, &mut piece);
                if piece.len() >= 1 << 20 {
                    sink.send(piece.split().freeze()).await.unwrap();
                }
            }
            piece.put_i16(-1);
            sink.send(piece.freeze()).await.unwrap();
            sink.finish().await.unwrap();
            let seconds = start.elapsed().as_secs_f64();
            client.batch_execute("COMMIT").await.unwrap();
            seconds
        })
    };
    let best = |run: &dyn Fn() -> f64| (0..3).map(|_| run()).fold(f64::MAX, f64::min);
    let text_s = best(&text);
    let count = warehouse
        .query("SELECT COUNT(*) FROM staging_events")
        .unwrap()
        .single_int();
    assert_eq!(count, Some(total as i64), "text COPY lost rows");
    let text_rows = warehouse
        .query("SELECT * FROM staging_events ORDER BY ts, session_id, item_in_session LIMIT 1000")
        .unwrap();
    let binary_s = best(&binary);
    let binary_rows = warehouse
        .query("SELECT * FROM staging_events ORDER BY ts, session_id, item_in_session LIMIT 1000")
        .unwrap();
    assert_eq!(
        text_rows, binary_rows,
        "the two formats stored different rows"
    );
    drop(warehouse);
    drop(database);

    println!("staging_events: {total} rows in {} batches", batches.len());
    println!(
        "COPY text    {text_s:6.2} s  {:8.0} rows/s",
        total as f64 / text_s
    );
    println!(
        "COPY binary  {binary_s:6.2} s  {:8.0} rows/s",
        total as f64 / binary_s
    );
}
