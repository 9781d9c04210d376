//! `analysis`: answer the business questions from the star schema.

use std::process::ExitCode;

use clap::builder::PossibleValuesParser;
use clap::Parser;
use sparkify::cli::{exit_code, CommonArgs};
use sparkify::report::Format;

/// Answer Sparkify's business questions from the star schema.
///
/// The thirteen questions: users who played both free and paid (both_levels), users by level
/// (users_by_level), number of songs (song_count) and artists (artist_count), users with the
/// most plays (top_users), play volume by year, day of month, ISO week, month, hour and weekday
/// (plays_by_year, plays_by_day, plays_by_week, plays_by_month, plays_by_hour,
/// plays_by_weekday), most played artists (top_artists) and songs (top_songs).
///
/// Run etl first. Rankings (both_levels, top_users, top_artists, top_songs) are cut to
/// --limit rows; the other answers are shown whole. The warehouse is the one the config file
/// selects: with [CLUSTER] HOST empty, the DuckDB file [WAREHOUSE] DUCKDB_PATH.
#[derive(Parser)]
#[command(
    name = "analysis",
    version,
    after_long_help = "Examples:\n  analysis                                  every answer as tables\n  analysis --query top_songs --limit 20     one ranking, 20 rows\n  analysis --format json > answers.json     one document for scripts\n  analysis --html report.html               every answer charted, in one file\n  analysis --png charts/                    each chart as a PNG, for slides and chat\n  analysis --print-sql --query top_songs    the query a question sends, sent nowhere"
)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,

    #[command(flatten)]
    lock: sparkify::cli::ReadLockArgs,

    /// Output format
    ///
    /// Tables for people, csv or json (one document with every answer).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,

    /// Rows of each ranking, 1 or more.
    #[arg(long, value_name = "N", default_value_t = 10, allow_negative_numbers = true,
          value_parser = sparkify::cli::whole_number(1, u32::MAX.into()))]
    limit: u64,

    /// Also write every answer, charted, into one HTML page
    ///
    /// Also write every answer into FILE, one self-contained HTML page (charts drawn inline,
    /// nothing fetched when it is opened), and print only where it went.
    #[arg(long, value_name = "FILE")]
    html: Option<std::path::PathBuf>,

    /// Also write each chart into DIR as NAME.png
    ///
    /// Also write each chart into DIR as NAME.png (plays_by_hour.png, top_songs.png...; the two
    /// counts have no chart), created when missing, and print only where they went.
    #[arg(long, value_name = "DIR")]
    png: Option<std::path::PathBuf>,

    /// Print the queries instead of sending them
    ///
    /// Print the query of each question asked, as the chosen engine would get it, and send
    /// none.
    #[arg(long, conflicts_with_all = ["html", "png"])]
    print_sql: bool,

    /// Run only this question (repeatable)
    ///
    /// Run only this question; repeat for several. Default: all thirteen, named above.
    #[arg(long = "query", value_name = "NAME", hide_possible_values = true,
          value_parser = PossibleValuesParser::new(sparkify::analysis::query_names()))]
    queries: Vec<String>,
}

fn main() -> ExitCode {
    let args: Args = sparkify::cli::parse();
    exit_code((|| {
        let config = args.common.init()?;
        let questions = sparkify::analysis::questions(&args.queries)?.len();
        if args.format == Format::Csv && questions != 1 && args.html.is_none() && args.png.is_none()
        {
            anyhow::bail!(
                "--format csv writes one question's table (several in one file would not be CSV): \
                 pass --query NAME (see --help for the names), once per file, or use --format \
                 json for every answer in one document"
            );
        }
        if args.print_sql {
            let mut printer = sparkify::warehouse::SqlPrinter::new(&config);
            sparkify::analysis::run(&mut printer, &args.queries, args.limit as u32)?;
            return sparkify::cli::print(&printer.script());
        }
        let mut warehouse = sparkify::warehouse::open_read_only(&config, args.lock.timeout())?;
        sparkify::etl::ensure_tables_exist(warehouse.as_mut(), &sparkify::schema::STAR_TABLES)?;
        sparkify::analysis::say_if_empty(warehouse.as_mut())?;
        let answers =
            sparkify::analysis::run(warehouse.as_mut(), &args.queries, args.limit as u32)?;
        if let Some(path) = &args.html {
            let built_at = chrono::Utc::now()
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string();
            let page = sparkify::html_report::render(&warehouse.describe(), &built_at, &answers)?;
            sparkify::html_report::write(path, &page)?;
            sparkify::cli::println(&format!(
                "wrote the report of {} to {}",
                sparkify::words::counted(answers.len(), "answer", "answers"),
                path.display()
            ))?;
        }
        if let Some(dir) = &args.png {
            let written = sparkify::charts::write_pngs(dir, &answers)?;
            sparkify::cli::println(&if written.is_empty() {
                "wrote no chart: the answers asked for are counts, shown as numbers (see --help)"
                    .to_string()
            } else {
                format!(
                    "wrote {} to {}",
                    sparkify::words::counted(written.len(), "chart", "charts"),
                    dir.display()
                )
            })?;
        }
        if args.html.is_some() || args.png.is_some() {
            return Ok(());
        }
        let rendered =
            sparkify::report::render_answers(&warehouse.describe(), &answers, args.format);
        // CSV and JSON are data for a file or a program, kept exact; on a terminal an escape
        // sequence or a direction override in the data must not act.
        if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            return sparkify::cli::print(&sparkify::report::for_terminal(&rendered));
        }
        sparkify::cli::print(&rendered)
    })())
}
