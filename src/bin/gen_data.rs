//! `gen_data`: write a deterministic synthetic Sparkify dataset in the source layout.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use sparkify::cli::{exit_code, LogArgs};
use sparkify::gen_data::{generate, GenOptions};

/// Write a synthetic dataset in the original sources' layout.
///
/// The layout: OUT/song_data/A/B/C/TRABC….json (one song per file, some pretty-printed),
/// OUT/log_data/YYYY/MM/YYYY-MM-DD-events.json (JSON lines, one file per day from 2018-11-01)
/// and OUT/log_json_path.json.
///
/// The same options always write the same bytes. The bundled data/ sample is
/// `gen_data --out data` with the defaults below. Point [LOCAL] in the config at OUT to load it.
#[derive(Parser)]
#[command(
    name = "gen_data",
    version,
    after_long_help = "Examples:\n  gen_data --out data                          the bundled sample (the defaults)\n  gen_data --out big --songs 10000 --events 1000000   1M events for a benchmark\n  gen_data --out data --force                  write it again over the old one"
)]
struct Args {
    #[command(flatten)]
    common: LogArgs,

    /// Songs in the catalogue (about three per artist), 1 or more.
    #[arg(long, default_value_t = 150, allow_negative_numbers = true,
          value_parser = sparkify::cli::whole_number(1, u32::MAX.into()))]
    songs: u64,

    /// Log events in all, spread evenly over the days.
    #[arg(long, default_value_t = 2000, allow_negative_numbers = true,
          value_parser = sparkify::cli::whole_number(0, u32::MAX.into()))]
    events: u64,

    /// Days of logs, one file each, 1 to 3650.
    #[arg(long, default_value_t = 30, allow_negative_numbers = true,
          value_parser = sparkify::cli::whole_number(1, 3650))]
    days: u64,

    /// Seed of the generator.
    #[arg(long, default_value_t = 42)]
    seed: u64,

    /// Directory to write into.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,

    /// Replace OUT/song_data and OUT/log_data if they exist.
    #[arg(long)]
    force: bool,
}

fn main() -> ExitCode {
    let args: Args = sparkify::cli::parse_sending_no_sql();
    args.common.init_logging();
    exit_code((|| {
        let summary = generate(&GenOptions {
            songs: args.songs as usize,
            events: args.events as usize,
            days: args.days as u32,
            seed: args.seed,
            out: args.out.clone(),
            force: args.force,
        })?;
        let out = std::fs::canonicalize(&args.out).unwrap_or_else(|_| args.out.clone());
        sparkify::cli::println(&format!(
            "wrote {} song files and {} log files ({} events, {} bytes) under {}\n\
             To load it, put these lines in dwh.cfg (in place of its [LOCAL] section):\n\
             [LOCAL]\nLOG_DATA = {}\nSONG_DATA = {}\nLOG_JSONPATH = {}",
            summary.song_files,
            summary.log_files,
            summary.events,
            summary.bytes,
            args.out.display(),
            out.join("log_data").display(),
            out.join("song_data").display(),
            out.join("log_json_path.json").display()
        ))
    })())
}
