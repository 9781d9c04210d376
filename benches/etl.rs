//! The etl benchmark: how close a full load comes to the floor of reading and parsing the
//! sources, on a synthetic dataset of chosen size. Run it with
//! `cargo bench --bench etl -- [--songs N] [--events N] [--dir DIR]`.
//!
//! It measures, on warm page cache:
//! 1. read: every source file read into memory, in parallel (the I/O floor);
//! 2. read + parse: the same, typed into staging rows by the library's parser (the floor);
//! 3. etl: the real `etl` binary, end to end into a fresh DuckDB file, with its peak memory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use rayon::prelude::*;
use sparkify::gen_data::{generate, GenOptions};
use sparkify::jsonpaths::JsonPaths;
use sparkify::load::parse_file;
use sparkify::parse::SourceKind;
use sparkify::schema::STAGING_EVENTS;
use sparkify::source::{discover_dir, Discovered};

struct Options {
    songs: usize,
    events: usize,
    dir: PathBuf,
}

fn options() -> Options {
    let mut options = Options {
        songs: 15_000,
        events: 1_000_000,
        dir: std::env::temp_dir().join("sparkify-bench"),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--songs" => options.songs = value.parse().expect("--songs N"),
            "--events" => options.events = value.parse().expect("--events N"),
            "--dir" => options.dir = PathBuf::from(value),
            "--bench" => {
                i += 1;
                continue;
            }
            other => panic!("unknown argument {other}: use --songs N --events N --dir DIR"),
        }
        i += 2;
    }
    options
}

fn seconds(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}

fn files(root: &Path) -> Discovered {
    discover_dir(root, "bench", &indicatif::ProgressBar::hidden()).expect("dataset present")
}

fn main() {
    let options = options();
    let data = options
        .dir
        .join(format!("data-{}-{}", options.songs, options.events));
    if !data.join("log_json_path.json").exists() {
        eprintln!("generating {} ...", data.display());
        generate(&GenOptions {
            songs: options.songs,
            events: options.events,
            days: 30,
            seed: 42,
            out: data.clone(),
            force: true,
        })
        .expect("generate dataset");
    }
    let songs = files(&data.join("song_data"));
    let logs = files(&data.join("log_data"));
    let bytes: u64 = songs.bytes() + logs.bytes();
    let mapping = JsonPaths::load(
        &data.join("log_json_path.json"),
        STAGING_EVENTS.columns.len(),
    )
    .expect("JSONPaths");

    let read = || {
        [&songs, &logs]
            .iter()
            .flat_map(|source| source.read(&source.files))
            .map(|contents| contents.map(|b| b.len()).unwrap_or(0))
            .sum::<usize>()
    };
    read(); // warm the page cache
    let start = Instant::now();
    read();
    let read_s = seconds(start);

    let start = Instant::now();
    let parse = |source: &Discovered, kind: SourceKind, mapping: Option<&JsonPaths>| {
        let contents = source.read(&source.files);
        source
            .files
            .par_iter()
            .zip(&contents)
            .map(|(f, c)| parse_file(f, c, kind, mapping).map_or(0, |p| p.records()))
            .sum::<u64>()
    };
    let records =
        parse(&songs, SourceKind::Song, None) + parse(&logs, SourceKind::Log, Some(&mapping));
    let parse_s = seconds(start);

    let config = options.dir.join("bench.cfg");
    let duckdb = options.dir.join("bench.duckdb");
    let _ = std::fs::remove_file(&duckdb);
    std::fs::write(
        &config,
        format!(
            "[LOCAL]\nLOG_DATA={0}/log_data\nSONG_DATA={0}/song_data\nLOG_JSONPATH={0}/log_json_path.json\n[WAREHOUSE]\nDUCKDB_PATH={1}\n",
            data.display(),
            duckdb.display()
        ),
    )
    .expect("write config");
    let status = Command::new(env!("CARGO_BIN_EXE_create_tables"))
        .args(["-q", "--config"])
        .arg(&config)
        .status()
        .expect("run create_tables");
    assert!(status.success());
    // GNU time reports the peak resident memory of etl, when it is installed.
    let gnu_time = Path::new("/usr/bin/time");
    let mut etl = if gnu_time.exists() {
        let mut c = Command::new(gnu_time);
        c.args(["-f", "peak_rss_kib=%M", env!("CARGO_BIN_EXE_etl")]);
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_etl"))
    };
    let start = Instant::now();
    let output = etl
        .args(["-q", "--config"])
        .arg(&config)
        .output()
        .expect("run etl");
    let etl_s = seconds(start);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let peak = stderr
        .lines()
        .find_map(|l| l.strip_prefix("peak_rss_kib="))
        .map(|k| format!("{} MiB", k.trim().parse::<u64>().unwrap_or(0) / 1024))
        .unwrap_or_else(|| "n/a".into());
    let mib = bytes as f64 / (1 << 20) as f64;

    println!(
        "dataset: {} song files, {} log files, {:.0} MiB, {records} records, {} cores",
        songs.files.len(),
        logs.files.len(),
        mib,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("read          {read_s:7.2} s  {:7.0} MiB/s", mib / read_s);
    println!(
        "read + parse  {parse_s:7.2} s  {:7.0} MiB/s   (the floor)",
        mib / parse_s
    );
    println!(
        "etl           {etl_s:7.2} s  {:7.0} MiB/s   {:.2}x the floor, peak memory {peak}",
        mib / etl_s,
        etl_s / parse_s
    );
    if let Some(line) = stdout.lines().find(|l| l.starts_with("time:")) {
        println!("etl phases    {}", line.trim_start_matches("time: "));
    }
}
