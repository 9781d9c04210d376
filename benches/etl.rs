//! The etl benchmark: how close a full load comes to the floor of reading and parsing the
//! sources, on a synthetic dataset of chosen size. Run it with
//! `cargo bench --bench etl -- [--songs N] [--events N] [--dir DIR]`.
//!
//! It measures, on warm page cache:
//! 1. read: every source file read into memory, in parallel (the I/O floor);
//! 2. read + parse: the same, typed into staging rows by the library's parser (the floor),
//!    in chunks of at most 1 GiB so that a 10M-event dataset fits in memory;
//! 3. etl: the real `create_tables` + `etl` binaries, end to end into a fresh DuckDB file, and
//!    into a PostgreSQL database of its own when `DATABASE_URL` (default 127.0.0.1:5432 as
//!    postgres) answers, each the median of `--runs` (default 3), with etl's peak memory;
//! 4. incremental: with days 1..29 of the logs loaded, the `etl` that adds day 30 (only its
//!    file read, the rest merged), per engine, against the full load;
//! 5. the reference: plain DuckDB SQL over `read_json` building the same star schema
//!    (`bench/plain_duckdb.py`, with Python's duckdb package of the bundled DuckDB's release:
//!    the bundled build has no `json` extension, see the README), when `python3` can import
//!    it; its tables must hold as many rows as the toolkit's, or the bench fails.
//!
//! It prints the figures and writes them, with the machine's cores and memory, to
//! `bench/RESULTS.md` for the default dataset, `bench/RESULTS-<songs>-songs-<events>-events.md`
//! for another.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

mod common;

use common::BenchDatabase;
use rayon::prelude::*;
use sparkify::config::Config;
use sparkify::gen_data::{generate, GenOptions};
use sparkify::jsonpaths::JsonPaths;
use sparkify::load::parse_file;
use sparkify::parse::SourceKind;
use sparkify::schema::{STAGING_EVENTS, STAR_TABLES};
use sparkify::source::{discover_dir, Discovered};
use sparkify::sql;

struct Options {
    songs: usize,
    events: usize,
    runs: usize,
    dir: PathBuf,
}

const DEFAULT_SONGS: usize = 15_000;
const DEFAULT_EVENTS: usize = 1_000_000;

fn options() -> Options {
    let mut options = Options {
        songs: DEFAULT_SONGS,
        events: DEFAULT_EVENTS,
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

    let (read_s, parse_s, records) = floor(&songs, &logs, &mapping);
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
    let duck_rows = star_rows(&duck.config);
    let reference = measure_reference(&options, &data, &sources);
    if let Ok(reference) = &reference {
        assert_eq!(
            reference.rows, duck_rows,
            "plain DuckDB SQL and the toolkit built star schemas of different sizes"
        );
    }
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
    let day_files = incremental_sources(&options, &data);
    let mut incremental = vec![measure_incremental(
        &options,
        &duck,
        &format!(
            "{}[WAREHOUSE]\nDUCKDB_PATH={}\n",
            day_files.sources,
            options.dir.join("bench-incremental.duckdb").display()
        ),
        &day_files,
    )];
    if let Some(pg) = &postgres {
        if let Ok(database) = BenchDatabase::create("incremental") {
            incremental.push(measure_incremental(
                &options,
                pg,
                &format!(
                    "{}[CLUSTER]\n{}\n[WAREHOUSE]\nENGINE=postgres\n",
                    day_files.sources,
                    database.cluster()
                ),
                &day_files,
            ));
        }
    }
    let mib = bytes as f64 / (1 << 20) as f64;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let memory = sparkify::machine::total_memory_bytes().map_or("unknown".to_string(), |bytes| {
        format!("{:.0} GiB", bytes as f64 / (1u64 << 30) as f64)
    });

    let mut out = String::new();
    out.push_str(&format!(
        "dataset: {} song files, {} log files, {:.0} MiB, {records} records; machine: {cores} \
         cores, {memory} of memory\n\nDuckDB memory limit: {} (the default here: a quarter of \
         the memory, between 512 MiB and 8 GiB); each peak memory below is the whole etl \
         process's resident peak\n\n",
        songs.files.len(),
        logs.files.len(),
        mib,
        sparkify::config::MemoryLimit::default_limit().as_str(),
    ));
    let reference_s = reference.as_ref().ok().map(|r| r.seconds);
    let against_reference =
        |seconds: f64| reference_s.map_or(String::new(), |r| format!("{:.2}x", seconds / r));
    out.push_str(
        "| step | seconds | MiB/s | against the floor | against plain DuckDB SQL | peak memory |\n",
    );
    out.push_str("| --- | --- | --- | --- | --- | --- |\n");
    out.push_str(&format!(
        "| read | {read_s:.2} | {:.0} | | | |\n",
        mib / read_s
    ));
    out.push_str(&format!(
        "| read + parse (the floor) | {parse_s:.2} | {:.0} | 1.00x | | |\n",
        mib / parse_s
    ));
    if let Ok(r) = &reference {
        out.push_str(&format!(
            "| plain DuckDB SQL over read_json (the reference) | {:.2} | {:.0} | {:.2}x | 1.00x | {:.0} MiB |\n",
            r.seconds,
            mib / r.seconds,
            r.seconds / parse_s,
            r.peak_mib
        ));
    }
    for run in std::iter::once(&duck).chain(postgres.as_ref()) {
        out.push_str(&format!(
            "| {} create_tables + etl | {:.2} | {:.0} | {:.2}x | {} | {} |\n",
            run.engine,
            run.seconds,
            mib / run.seconds,
            run.seconds / parse_s,
            against_reference(run.seconds),
            run.peak
        ));
    }
    match &reference {
        Ok(r) => out.push_str(&format!(
            "\nThe reference ran DuckDB {} (Python package) against the toolkit's bundled {}; \
             its star schema has the same row counts ({}).\n",
            r.version,
            bundled_duckdb_version(),
            duck_rows
                .iter()
                .map(|(table, n)| format!("{table} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Err(why) => out.push_str(&format!("\nPlain DuckDB SQL: not measured ({why})\n")),
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
    out.push_str(&format!(
        "\nIncremental: days 1..29 loaded, then `etl` adds day 30 ({} of {} log files, {:.1} \
         MiB); medians of {} runs\n\n",
        1,
        logs.files.len(),
        day_files.last_day_bytes as f64 / (1 << 20) as f64,
        options.runs
    ));
    out.push_str(
        "| engine | full load (create_tables + etl) | etl adding day 30 | fraction | phases |\n",
    );
    out.push_str("| --- | --- | --- | --- | --- |\n");
    for (full, run) in std::iter::once(&duck)
        .chain(postgres.as_ref())
        .zip(&incremental)
    {
        out.push_str(&format!(
            "| {} | {:.2} s | {:.2} s | {:.2} | {} |\n",
            run.engine,
            full.seconds,
            run.seconds,
            run.seconds / full.seconds,
            run.phases
        ));
    }
    print!("{out}");
    // The default dataset's figures in RESULTS.md, other sizes beside it.
    let name = if (options.songs, options.events) == (DEFAULT_SONGS, DEFAULT_EVENTS) {
        "RESULTS.md".to_string()
    } else {
        format!(
            "RESULTS-{}-songs-{}-events.md",
            options.songs, options.events
        )
    };
    let results = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("bench")
        .join(name);
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
    /// The config the run used.
    config: PathBuf,
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
            .args(["-q", "--yes", "--config"])
            .arg(&path)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run create_tables");
        assert!(status.success());
        // Not -q: that prints no summary on success.
        let output = Command::new(env!("CARGO_BIN_EXE_etl"))
            .arg("--config")
            .arg(&path)
            .output();
        let seconds = seconds(start);
        let output = succeeded(output, "etl");
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        runs.push(EngineRun {
            engine,
            config: path.clone(),
            seconds,
            peak: summary_line(&stdout, "peak memory: "),
            phases: summary_line(&stdout, "time: "),
        });
    }
    median(runs, |run| run.seconds)
}

/// The sources of the incremental measurement: hard links to the dataset's files, the last
/// day's log file held back until the timed run.
struct DayFiles {
    /// The `[LOCAL]` section over them.
    sources: String,
    /// The last day's log file in the dataset, and where its link goes.
    last_day: PathBuf,
    link: PathBuf,
    last_day_bytes: u64,
}

fn incremental_sources(options: &Options, data: &Path) -> DayFiles {
    let root = options
        .dir
        .join(format!("incremental-{}-{}", options.songs, options.events));
    let _ = std::fs::remove_dir_all(&root);
    let mut logs = Vec::new();
    for entry in walkdir::WalkDir::new(data) {
        let entry = entry.expect("walk the dataset");
        let relative = entry.path().strip_prefix(data).unwrap();
        let target = root.join(relative);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
        } else {
            std::fs::hard_link(entry.path(), &target).expect("link a source file");
            if relative.starts_with("log_data") {
                logs.push((entry.path().to_path_buf(), target));
            }
        }
    }
    logs.sort();
    let (last_day, link) = logs.pop().expect("log files");
    let last_day_bytes = std::fs::metadata(&last_day).expect("last day").len();
    DayFiles {
        sources: format!(
            "[LOCAL]\nLOG_DATA={0}/log_data\nSONG_DATA={0}/song_data\nLOG_JSONPATH={0}/log_json_path.json\n",
            root.display()
        ),
        last_day,
        link,
        last_day_bytes,
    }
}

/// The rest of the line of etl's summary that starts with `prefix`, "n/a" if none does.
fn summary_line(summary: &str, prefix: &str) -> String {
    summary
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or("n/a")
        .to_string()
}

/// For each run: days 1..29 loaded afresh (`create_tables` + `etl`, not timed), then the last
/// day's file added and `etl` timed. The median run, and its phases.
fn measure_incremental(
    options: &Options,
    full: &EngineRun,
    config: &str,
    days: &DayFiles,
) -> EngineRun {
    let path = options
        .dir
        .join(format!("bench-incremental-{}.cfg", full.engine));
    std::fs::write(&path, config).expect("write config");
    // create_tables starts over without asking; etl prints its summary (not -q).
    let run = |binary: &str| {
        let args: &[&str] = if binary.ends_with("create_tables") {
            &["-q", "--yes", "--config"]
        } else {
            &["--config"]
        };
        succeeded(Command::new(binary).args(args).arg(&path).output(), binary)
    };
    let mut runs = Vec::new();
    for _ in 0..options.runs.max(1) {
        let _ = std::fs::remove_file(&days.link);
        run(env!("CARGO_BIN_EXE_create_tables"));
        run(env!("CARGO_BIN_EXE_etl"));
        std::fs::hard_link(&days.last_day, &days.link).expect("link the last day");
        let start = Instant::now();
        let output = run(env!("CARGO_BIN_EXE_etl"));
        let seconds = seconds(start);
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(
            stdout.contains("load: incremental"),
            "the run adding a day was not incremental:\n{stdout}"
        );
        runs.push(EngineRun {
            engine: full.engine,
            config: path.clone(),
            seconds,
            peak: String::new(),
            phases: summary_line(&stdout, "time: "),
        });
    }
    median(runs, |run| run.seconds)
}

/// Reads and parses every source file as the loader would, in chunks of at most
/// [`FLOOR_CHUNK_BYTES`]: (seconds to read, seconds to read and parse, records parsed).
fn floor(songs: &Discovered, logs: &Discovered, mapping: &JsonPaths) -> (f64, f64, u64) {
    let chunks = |source: &Discovered| {
        let mut chunks: Vec<std::ops::Range<usize>> = Vec::new();
        let (mut first, mut bytes) = (0, 0);
        for (i, file) in source.files.iter().enumerate() {
            if bytes + file.size > FLOOR_CHUNK_BYTES && i > first {
                chunks.push(first..i);
                (first, bytes) = (i, 0);
            }
            bytes += file.size;
        }
        chunks.push(first..source.files.len());
        chunks
    };
    let read = || {
        let mut total = 0;
        for source in [songs, logs] {
            for chunk in chunks(source) {
                total += source
                    .read(&source.files[chunk], u64::MAX)
                    .iter()
                    .map(|contents| contents.as_ref().map_or(0, |b| b.len()))
                    .sum::<usize>();
            }
        }
        total
    };
    read(); // warm the page cache
    let start = Instant::now();
    read();
    let read_s = seconds(start);

    let start = Instant::now();
    let mut records = 0;
    for (source, kind, mapping) in [
        (songs, SourceKind::Song, None),
        (logs, SourceKind::Log, Some(mapping)),
    ] {
        for chunk in chunks(source) {
            let files = &source.files[chunk];
            let contents = source.read(files, u64::MAX);
            records += files
                .par_iter()
                .zip(&contents)
                .map(|(f, c)| parse_file(f, c, kind, mapping).map_or(0, |p| p.records()))
                .sum::<u64>();
        }
    }
    (read_s, seconds(start), records)
}

/// The floor reads and parses at most this many bytes at a time.
const FLOOR_CHUNK_BYTES: u64 = 1 << 30;

/// Rows of each star table in the warehouse `config` names, through the library.
fn star_rows(config: &Path) -> Vec<(&'static str, u64)> {
    let config = Config::load(config).expect("the benchmark's config");
    let mut warehouse = sparkify::warehouse::open(&config).expect("open the benchmark's warehouse");
    STAR_TABLES
        .iter()
        .map(|table| {
            let rows = warehouse
                .query(&sql::count_rows(table))
                .expect("count rows")
                .single_int()
                .expect("a count");
            (table.name, rows as u64)
        })
        .collect()
}

/// The run in the middle when ordered by `seconds`.
fn median<T>(mut runs: Vec<T>, seconds: impl Fn(&T) -> f64) -> T {
    runs.sort_by(|a, b| seconds(a).total_cmp(&seconds(b)));
    let middle = runs.len() / 2;
    runs.swap_remove(middle)
}

/// The output of a benchmarked process that must have succeeded; its stderr otherwise.
fn succeeded(output: std::io::Result<std::process::Output>, what: &str) -> std::process::Output {
    let output = output.unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The release of the DuckDB this crate bundles, as `2.0.0`.
fn bundled_duckdb_version() -> String {
    let conn = duckdb::Connection::open_in_memory().expect("in-memory DuckDB");
    let version: String = conn
        .query_row("SELECT version()", [], |r| r.get(0))
        .expect("DuckDB version");
    version.trim_start_matches('v').to_string()
}

/// The plain DuckDB SQL reference's figures.
struct ReferenceRun {
    seconds: f64,
    peak_mib: f64,
    version: String,
    rows: Vec<(&'static str, u64)>,
}

/// Runs `bench/plain_duckdb.py` `options.runs` times on the same files, whole processes, with
/// the DDL and transform `--print-sql` gives for DuckDB; the median run. An error says why it
/// could not run (no python3, or no duckdb package for it).
fn measure_reference(
    options: &Options,
    data: &Path,
    sources: &str,
) -> Result<ReferenceRun, String> {
    let version = Command::new("python3")
        .args(["-c", "import duckdb; print(duckdb.__version__)"])
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    if !version.status.success() {
        return Err(format!(
            "python3 cannot import duckdb; `pip install duckdb=={}` adds it",
            bundled_duckdb_version()
        ));
    }
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    let warehouse = options.dir.join("reference.duckdb");
    let config = options.dir.join("bench-reference.cfg");
    std::fs::write(
        &config,
        format!(
            "{sources}[WAREHOUSE]\nDUCKDB_PATH={}\n",
            warehouse.display()
        ),
    )
    .expect("write config");
    let print_sql = |binary: &str, file: &str| {
        let output = Command::new(binary)
            .args(["-q", "--print-sql", "--config"])
            .arg(&config)
            .output()
            .expect("run --print-sql");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let path = options.dir.join(file);
        std::fs::write(&path, &output.stdout).expect("write SQL");
        path
    };
    let ddl = print_sql(env!("CARGO_BIN_EXE_create_tables"), "reference-ddl.sql");
    let etl = print_sql(env!("CARGO_BIN_EXE_etl"), "reference-etl.sql");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/plain_duckdb.py");
    let mut runs = Vec::new();
    for _ in 0..options.runs.max(1) {
        for stale in [warehouse.clone(), warehouse.with_extension("duckdb.wal")] {
            let _ = std::fs::remove_file(stale);
        }
        let start = Instant::now();
        let output = Command::new("python3")
            .arg(&script)
            .arg(data)
            .arg(&warehouse)
            .arg(&ddl)
            .arg(&etl)
            .output();
        let seconds = seconds(start);
        let output = succeeded(output, "plain_duckdb.py");
        let report: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("plain_duckdb.py prints JSON");
        let rows = STAR_TABLES
            .iter()
            .map(|table| {
                let rows = report["rows"][table.name].as_u64().expect("row count");
                (table.name, rows)
            })
            .collect();
        runs.push(ReferenceRun {
            seconds,
            peak_mib: report["peak_mib"].as_f64().unwrap_or(f64::NAN),
            version: version.clone(),
            rows,
        });
    }
    let reference = median(runs, |run| run.seconds);
    let _ = std::fs::remove_file(&warehouse);
    Ok(reference)
}
