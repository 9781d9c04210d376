//! The etl benchmark: how close a full load comes to the floor of reading and parsing the
//! sources, on a synthetic dataset of chosen size. Run it with
//! `cargo bench --bench etl -- [--songs N] [--events N] [--dir DIR]`.
//!
//! It measures, on warm page cache:
//! 1. read: every source file read into memory, in parallel (the I/O floor);
//! 2. read + parse: the same, typed into staging rows by the library's parser (the floor);
//! 3. etl: the real `create_tables` + `etl` binaries, end to end into a fresh DuckDB file, and
//!    into a PostgreSQL database of its own when `DATABASE_URL` (default 127.0.0.1:5432 as
//!    postgres) answers, each the median of `--runs` (default 3), with etl's peak memory.
//!
//! It prints the figures and writes them, with the machine's cores and memory, to
//! `bench/RESULTS.md`. Plain DuckDB SQL over `read_json` is not measured: the bundled DuckDB
//! is built without its `json` extension (see the README), and installing it needs the network.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

mod common;

use common::BenchDatabase;
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
    runs: usize,
    dir: PathBuf,
}

fn options() -> Options {
    let mut options = Options {
        songs: 15_000,
        events: 1_000_000,
        runs: 3,
        dir: std::env::temp_dir().join("sparkify-bench"),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--songs" => options.songs = value.parse().expect("--songs N"),
            "--events" => options.events = value.parse().expect("--events N"),
            "--runs" => options.runs = value.parse().expect("--runs N"),
            "--dir" => options.dir = PathBuf::from(value),
            "--bench" => {
                i += 1;
                continue;
            }
            other => {
                panic!("unknown argument {other}: use --songs N --events N --runs N --dir DIR")
            }
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

    let sources = format!(
        "[LOCAL]\nLOG_DATA={0}/log_data\nSONG_DATA={0}/song_data\nLOG_JSONPATH={0}/log_json_path.json\n",
        data.display()
    );
    let duckdb = options.dir.join("bench.duckdb");
    let _ = std::fs::remove_file(&duckdb);
    let duck = measure_engine(
        &options,
        "duckdb",
        &format!("{sources}[WAREHOUSE]\nDUCKDB_PATH={}\n", duckdb.display()),
    );
    let postgres = match BenchDatabase::create("etl") {
        Ok(database) => Some(measure_engine(
            &options,
            "postgres",
            &format!(
                "{sources}[CLUSTER]\n{}\n[WAREHOUSE]\nENGINE=postgres\n",
                database.cluster()
            ),
        )),
        Err(e) => {
            eprintln!("NOTICE: PostgreSQL not measured: {e}");
            None
        }
    };
    let mib = bytes as f64 / (1 << 20) as f64;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or("unknown".to_string(), |kib| {
            format!("{:.0} GiB", kib as f64 / 1048576.0)
        });

    let mut out = String::new();
    out.push_str(&format!(
        "dataset: {} song files, {} log files, {:.0} MiB, {records} records; machine: {cores} \
         cores, {memory} of memory\n\n",
        songs.files.len(),
        logs.files.len(),
        mib,
    ));
    out.push_str("| step | seconds | MiB/s | against the floor | peak memory |\n");
    out.push_str("| --- | --- | --- | --- | --- |\n");
    out.push_str(&format!(
        "| read | {read_s:.2} | {:.0} | | |\n",
        mib / read_s
    ));
    out.push_str(&format!(
        "| read + parse (the floor) | {parse_s:.2} | {:.0} | 1.00x | |\n",
        mib / parse_s
    ));
    for run in std::iter::once(&duck).chain(postgres.as_ref()) {
        out.push_str(&format!(
            "| {} create_tables + etl | {:.2} | {:.0} | {:.2}x | {} |\n",
            run.engine,
            run.seconds,
            mib / run.seconds,
            run.seconds / parse_s,
            run.peak
        ));
    }
    if let Some(pg) = &postgres {
        out.push_str(&format!(
            "\nPostgreSQL against DuckDB: {:.2}x\n",
            pg.seconds / duck.seconds
        ));
    } else {
        out.push_str("\nPostgreSQL: not measured (no server answered at DATABASE_URL)\n");
    }
    for run in std::iter::once(&duck).chain(postgres.as_ref()) {
        out.push_str(&format!("\n{} etl phases: {}\n", run.engine, run.phases));
    }
    print!("{out}");
    let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/RESULTS.md");
    std::fs::create_dir_all(results.parent().unwrap()).expect("bench/");
    std::fs::write(
        &results,
        format!(
            "# etl benchmark results\n\nWritten by `cargo bench --bench etl -- --songs {} \
             --events {} --runs {}`; medians of {} runs, warm page cache.\n\n{out}",
            options.songs, options.events, options.runs, options.runs
        ),
    )
    .expect("write bench/RESULTS.md");
    eprintln!("wrote {}", results.display());
}

/// One engine's end-to-end figures.
struct EngineRun {
    engine: &'static str,
    /// Median wall time of create_tables + etl.
    seconds: f64,
    peak: String,
    phases: String,
}

/// Runs `create_tables` and `etl` with `config` `options.runs` times; the median time, and the
/// peak memory and phases of that run.
fn measure_engine(options: &Options, engine: &'static str, config: &str) -> EngineRun {
    let path = options.dir.join(format!("bench-{engine}.cfg"));
    std::fs::write(&path, config).expect("write config");
    let mut runs = Vec::new();
    for _ in 0..options.runs.max(1) {
        let start = Instant::now();
        let status = Command::new(env!("CARGO_BIN_EXE_create_tables"))
            .args(["-q", "--config"])
            .arg(&path)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run create_tables");
        assert!(status.success());
        let output = Command::new(env!("CARGO_BIN_EXE_etl"))
            .args(["-q", "--config"])
            .arg(&path)
            .output()
            .expect("run etl");
        let seconds = seconds(start);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        let line = |prefix: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(prefix))
                .unwrap_or("n/a")
                .to_string()
        };
        runs.push(EngineRun {
            engine,
            seconds,
            peak: line("peak memory: "),
            phases: line("time: "),
        });
    }
    runs.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    let median = runs.len() / 2;
    runs.swap_remove(median)
}
