//! `check`: run the data-quality checks on the warehouse as it is.

use std::process::ExitCode;

use clap::Parser;
use sparkify::cli::{exit_code, CommonArgs};
use sparkify::warehouse::SqlPrinter;

/// Run the quality checks on the warehouse as it is; change nothing.
///
/// Run the data-quality checks that end every etl on the warehouse as it is, and change
/// nothing: every key column not null (not_null); the keys of songplays (songplay_id, and
/// user_id + session_id + item_in_session), users, songs, artists and time unique (unique);
/// every user, song, artist and start time of songplays, and every artist of songs, found in
/// its table, a play's artist being its song's (relationship); level free or paid, hour 0-23,
/// day 1-31, week 1-53, month 1-12, weekday 0-6 (accepted_values); as many songplays as
/// distinct NextSong events with a user in staging_events (reconciliation).
///
/// Prints a table of the checks (rows examined, failures, seconds; with -q only when one
/// fails). If one fails, it is named on stderr with up to five offending rows and the exit
/// code is 1. The warehouse is the one
/// the config file selects, as for etl.
#[derive(Parser)]
#[command(
    name = "check",
    version,
    after_long_help = "Examples:\n  check                    check the warehouse of ./dwh.cfg\n  check -q && echo sound   in a script: exit 0 only when every check passes\n  check --print-sql        show the checks' SQL, send nothing\n  check --format json      one document for a scheduler (exit 1 still means a failure)\n  check --rejects          the records the loads rejected, with file, line and reason"
)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,

    #[command(flatten)]
    lock: sparkify::cli::ReadLockArgs,

    /// Print the checks' queries instead of sending them
    ///
    /// Print every query the checks would send to the chosen engine, and send none.
    #[arg(long)]
    print_sql: bool,

    /// List the first N rejected records instead
    ///
    /// List the rejected records in load_errors instead (source, file, line, reason, raw
    /// text), the first N of them (default 100).
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "100",
          allow_negative_numbers = true, value_parser = sparkify::cli::whole_number(1, 1_000_000))]
    rejects: Option<u64>,

    /// Output format
    ///
    /// A table for people, or json (one document: whether all passed, and each check with rows
    /// examined, failures, seconds and its offending rows) for schedulers.
    #[arg(long, value_enum, default_value_t = CheckFormat::Table)]
    format: CheckFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CheckFormat {
    Table,
    Json,
}

fn main() -> ExitCode {
    let args: Args = sparkify::cli::parse();
    exit_code((|| {
        let config = args.common.init()?;
        if args.print_sql {
            let mut printer = SqlPrinter::new(&config);
            sparkify::checks::run(&mut printer)?;
            return sparkify::cli::print(&printer.script());
        }
        let mut warehouse = sparkify::warehouse::open_read_only(&config, args.lock.timeout())?;
        if let Some(limit) = args.rejects {
            let errors = &sparkify::schema::LOAD_ERRORS;
            sparkify::etl::ensure_tables_exist(warehouse.as_mut(), &[errors])?;
            let total = warehouse
                .query(&sparkify::sql::count_rows(errors))?
                .expect_int("the count of load_errors")?;
            let rows = warehouse.query(&sparkify::sql::rejects(limit))?;
            return sparkify::cli::print(&sparkify::report::rejects_table(&rows, total));
        }
        sparkify::etl::ensure_tables_exist(warehouse.as_mut(), &sparkify::checks::TABLES_READ)?;
        let outcomes = sparkify::checks::run(warehouse.as_mut())?;
        match args.format {
            // -q: on success the exit code says it; a failure still shows the table.
            CheckFormat::Table
                if args.common.base.log.quiet && outcomes.iter().all(|o| o.passed()) => {}
            CheckFormat::Table => {
                sparkify::cli::println(&format!(
                    "checks of {}\n{}",
                    warehouse.describe(),
                    sparkify::report::checks_table(&outcomes)
                ))?;
            }
            CheckFormat::Json => sparkify::cli::print(&sparkify::report::checks_json(
                &warehouse.describe(),
                &outcomes,
            ))?,
        }
        match sparkify::checks::failure_report(&outcomes) {
            Some(failed) => Err(anyhow::anyhow!("{failed}")),
            None => Ok(()),
        }
    })())
}
