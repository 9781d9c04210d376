//! `create_tables`: start over: drop and create the staging tables, the star schema, the
//! ledger and `load_errors`.

use std::process::ExitCode;

use clap::Parser;
use sparkify::cli::{exit_code, CommonArgs};

/// Start over: drop and create every table of the warehouse, empty.
///
/// The tables: staging_events, staging_songs, load_errors, the ledger loaded_files, and the
/// star schema songplays, users, songs, artists, time. etl creates them by itself when they do
/// not exist yet, so this is only for starting over.
///
/// Only the toolkit's own tables are dropped: each carries a comment saying so. A table of
/// the same name that the toolkit did not create (an application's own users, say) makes
/// create_tables refuse and change nothing; [WAREHOUSE] SCHEMA keeps the warehouse in a
/// schema of its own on PostgreSQL and Redshift. Tables that hold rows are dropped only with
/// --yes, or when you answer yes on a terminal; what was dropped is printed with its rows.
///
/// The warehouse is chosen by the config file: with [CLUSTER] HOST empty (or
/// [WAREHOUSE] ENGINE = duckdb) it is the DuckDB file [WAREHOUSE] DUCKDB_PATH
/// (default sparkify.duckdb next to the config file); with a PostgreSQL host (or
/// ENGINE = postgres) it is that server, reached with [CLUSTER] HOST, DB_PORT, DB_NAME,
/// DB_USER and DB_PASSWORD. --engine overrides the file.
#[derive(Parser)]
#[command(
    name = "create_tables",
    version,
    after_long_help = "Examples:\n  create_tables                          create them with ./dwh.cfg (asks before dropping rows)\n  create_tables --yes                    start over without asking (scripts, cron)\n  create_tables --engine redshift --print-sql   the DDL Redshift would get, offline"
)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,

    /// Print the statements instead of sending them
    ///
    /// Print every statement create_tables would send to the chosen engine, in order, and
    /// send none (no connection is made).
    #[arg(long)]
    print_sql: bool,

    /// Drop tables that hold rows without asking
    ///
    /// Drop the toolkit's tables even when they hold rows, without asking. Without it, a
    /// terminal is asked, and a run with no terminal (cron, CI) refuses and drops nothing.
    #[arg(long, short = 'y', visible_alias = "force")]
    yes: bool,
}

fn main() -> ExitCode {
    let args: Args = sparkify::cli::parse();
    exit_code((|| {
        let config = args.common.init()?;
        let mut consent = |holding: &[(&'static str, i64)]| consent(args.yes, holding);
        if args.print_sql {
            let mut printer = sparkify::warehouse::SqlPrinter::new(&config);
            sparkify::create_tables::create_tables(&mut printer, &mut consent)?;
            return sparkify::cli::print(&printer.script());
        }
        let mut warehouse = sparkify::warehouse::open(&config)?;
        let done = sparkify::create_tables::create_tables(warehouse.as_mut(), &mut consent)?;
        let dropped = if done.dropped.is_empty() {
            String::new()
        } else {
            format!(
                "dropped {}\n",
                sparkify::create_tables::describe_rows(&done.dropped)
            )
        };
        sparkify::cli::print(&format!(
            "{dropped}created {} empty tables in {}: {}\n",
            done.tables.len(),
            warehouse.describe(),
            done.tables.join(", ")
        ))
    })())
}

/// Whether the tables in `holding` (with their rows) may be dropped: yes with --yes; else the
/// terminal is asked; with no terminal to ask, an error that says what to do.
fn consent(yes: bool, holding: &[(&'static str, i64)]) -> anyhow::Result<bool> {
    use std::io::{BufRead, IsTerminal, Write};
    if yes {
        return Ok(true);
    }
    let rows = sparkify::create_tables::describe_rows(holding);
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        anyhow::bail!(
            "create_tables would drop tables that hold rows: {rows}; nothing was dropped. Pass \
             --yes to drop them and start over, or run etl alone: it loads into the tables as \
             they are, reading only new files"
        );
    }
    eprint!(
        "create_tables will drop tables that hold rows: {rows}.\nDrop them and start over? [y/N] "
    );
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}
