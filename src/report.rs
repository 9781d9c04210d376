//! Renders results for people and for scripts: the `etl` summary, and `analysis` answers as
//! titled tables, CSV or one JSON document.

use std::fmt::Write;

use prettytable::{format, Cell as TableCell, Row as TableRow, Table};
use serde_json::{json, Map, Value};

use crate::etl::EtlReport;
use crate::ledger::LoadMode;
use crate::record::escape_controls;
use crate::source::Inputs;
use crate::warehouse::{Cell, QueryResult};
/// The words the reports count in, also reachable here for the report's callers.
pub use crate::words::{counted, thousands};

/// How `analysis` prints its answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Titled tables for people.
    Table,
    /// CSV with a header row, of one question (`--query NAME`): several tables in one file
    /// would not be CSV a reader such as pandas takes. A text cell starting with = + - @ (or a tab or carriage return) is written with a `'`
    /// in front, so a spreadsheet shows it instead of running it as a formula.
    Csv,
    /// One JSON document holding every answer, for scripts.
    Json,
}

/// One answered question.
#[derive(Debug, Clone)]
pub struct Answer {
    pub name: &'static str,
    pub title: &'static str,
    pub result: QueryResult,
}

fn text_table(headers: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> Table {
    let mut table = Table::new();
    table.set_format(*format::consts::FORMAT_NO_LINESEP_WITH_TITLE);
    table.set_titles(TableRow::new(
        headers.iter().map(|h| TableCell::new(h)).collect(),
    ));
    for row in rows {
        table.add_row(TableRow::new(
            row.iter().map(|c| TableCell::new(c)).collect(),
        ));
    }
    table
}

fn cell_json(cell: &Cell) -> Value {
    match cell {
        Cell::Null => Value::Null,
        Cell::Int(i) => json!(i),
        Cell::Float(f) => json!(f),
        Cell::Text(s) => json!(s),
    }
}

/// A cell as CSV shows it: text that a spreadsheet would take for a formula gets a `'` in
/// front (OWASP's advice on CSV injection); numbers are written as they are.
fn csv_cell(cell: &Cell) -> String {
    match cell {
        Cell::Text(text) if text.starts_with(['=', '+', '-', '@', '\t', '\r']) => {
            format!("'{text}")
        }
        other => other.to_string(),
    }
}

/// Rendered answers as a terminal may show them: each line's control characters and direction
/// overrides escaped (see [`escape_controls`]), its line ends kept.
pub fn for_terminal(rendered: &str) -> String {
    rendered
        .split_inclusive('\n')
        .map(|line| {
            let body = line.trim_end_matches('\n');
            format!("{}{}", escape_controls(body), &line[body.len()..])
        })
        .collect()
}

/// Renders answers in the chosen format.
pub fn render_answers(warehouse: &str, answers: &[Answer], format: Format) -> String {
    match format {
        Format::Table => {
            let mut out = String::new();
            for answer in answers {
                let headers: Vec<&str> = answer.result.columns.iter().map(String::as_str).collect();
                // Data reaches a terminal here: an escape sequence in a title must not.
                let rows = answer
                    .result
                    .rows
                    .iter()
                    .map(|r| r.iter().map(|c| escape_controls(&c.to_string())).collect());
                let _ = writeln!(out, "{}\n{}", answer.title, text_table(&headers, rows));
            }
            out
        }
        Format::Csv => {
            let mut out = String::new();
            for (i, answer) in answers.iter().enumerate() {
                if answers.len() > 1 {
                    if i > 0 {
                        out.push('\n');
                    }
                    let _ = writeln!(out, "# {}: {}", answer.name, answer.title);
                }
                let mut writer = csv::Writer::from_writer(Vec::new());
                let rows = answer
                    .result
                    .rows
                    .iter()
                    .map(|r| r.iter().map(csv_cell).collect::<Vec<_>>());
                let written = writer
                    .write_record(&answer.result.columns)
                    .and_then(|_| rows.into_iter().try_for_each(|r| writer.write_record(r)));
                debug_assert!(written.is_ok(), "writing CSV to memory cannot fail");
                let bytes = writer.into_inner().unwrap_or_default();
                out.push_str(&String::from_utf8_lossy(&bytes));
            }
            out
        }
        Format::Json => {
            let answers: Vec<Value> = answers
                .iter()
                .map(|answer| {
                    let rows: Vec<Value> = answer
                        .result
                        .rows
                        .iter()
                        .map(|row| {
                            let object: Map<String, Value> = answer
                                .result
                                .columns
                                .iter()
                                .cloned()
                                .zip(row.iter().map(cell_json))
                                .collect();
                            Value::Object(object)
                        })
                        .collect();
                    json!({
                        "name": answer.name,
                        "title": answer.title,
                        "columns": answer.result.columns,
                        "rows": rows,
                    })
                })
                .collect();
            let document = json!({ "warehouse": warehouse, "answers": answers });
            format!("{:#}\n", document)
        }
    }
}

pub fn dry_run_summary(inputs: &Inputs) -> String {
    let sources = text_table(
        &["source", "root", "files", "bytes", "unreadable"],
        [("song_data", &inputs.songs), ("log_data", &inputs.logs)]
            .into_iter()
            .map(|(name, found)| {
                vec![
                    name.to_string(),
                    found.root.to_string(),
                    found.files.len().to_string(),
                    found.bytes().to_string(),
                    found
                        .files
                        .iter()
                        .filter(|f| f.unreadable.is_some())
                        .count()
                        .to_string(),
                ]
            }),
    );
    format!(
        "dry run: nothing loaded; the JSONPaths file maps {} columns\n{sources}",
        inputs.mapping.paths.len()
    )
}

/// What a run read, as one line: the mode and how the files compared with the ledger.
pub fn load_mode_line(report: &EtlReport) -> String {
    crate::ledger::plan_line("load", &report.mode, report.changes.as_ref())
}

/// The summary `etl` prints when it is done: a few lines (what was read, staged and rejected,
/// the star schema and how many plays matched a song, the checks, the time), and with `detail`
/// (`-v`) the tables of sources, rows and checks too.
pub fn etl_summary(report: &EtlReport, detail: bool) -> String {
    let mut out = format!("etl into {}\n", report.warehouse);
    if !report.created.is_empty() {
        let _ = writeln!(
            out,
            "created {} tables, which did not exist yet: {}",
            report.created.len(),
            report.created.join(", ")
        );
    }
    let _ = writeln!(out, "{}", load_mode_line(report));
    if !report.sources.is_empty() {
        let sum = |f: fn(&crate::stats::SourceStats) -> u64| -> i64 {
            report.sources.iter().map(|s| f(s) as i64).sum()
        };
        let by_warehouse = report.sources.iter().all(|s| s.read_by_warehouse);
        let read = if by_warehouse && report.changes.is_none() {
            "read by Redshift's COPY".to_string()
        } else {
            let files: i64 = report
                .sources
                .iter()
                .map(|s| {
                    if s.read_by_warehouse {
                        s.yields.len() as i64
                    } else {
                        s.files as i64
                    }
                })
                .sum();
            format!(
                "read: {} file{}, {} bytes",
                thousands(files),
                if files == 1 { "" } else { "s" },
                thousands(sum(|s| s.bytes))
            )
        };
        let _ = writeln!(
            out,
            "{read}: {} records, {} staged, {} rejected",
            thousands(sum(|s| s.records)),
            thousands(sum(|s| s.staged)),
            thousands(sum(|s| s.rejected))
        );
    }
    if let Some((plays, matched)) = report.matched_plays {
        let share = if plays > 0 {
            format!(" ({:.1}%)", matched as f64 * 100.0 / plays as f64)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "songplays: {} plays, {} of them{share} matched to a song of the catalogue",
            thousands(plays),
            thousands(matched)
        );
    }
    let star: Vec<String> = report
        .tables
        .iter()
        .filter(|(name, _)| crate::schema::STAR_TABLES.iter().any(|t| t.name == *name))
        .map(|(name, rows)| format!("{name} {}", thousands(*rows)))
        .collect();
    let _ = writeln!(out, "tables: {}", star.join(", "));
    if !report.checks.is_empty() {
        let _ = writeln!(out, "{}", checks_line(&report.checks));
    } else if report.mode != LoadMode::NothingNew {
        let _ = writeln!(out, "quality checks skipped (--no-checks)");
    }
    if detail {
        out.push_str(&etl_tables(report));
    }
    let total: f64 = report.phases.iter().map(|(_, d)| d.as_secs_f64()).sum();
    let phases: Vec<String> = report
        .phases
        .iter()
        .map(|(name, d)| format!("{name} {:.2}s", d.as_secs_f64()))
        .collect();
    let _ = writeln!(out, "time: {} (total {total:.2}s)", phases.join(", "));
    if let Some(bytes) = report.peak_memory {
        let _ = writeln!(out, "peak memory: {} MiB", bytes >> 20);
    }
    if report.rejected() > 0 {
        let _ = writeln!(
            out,
            "{} in load_errors (file, line, reason, raw_text; `check --rejects` lists \
             them); the first:",
            counted(
                report.rejected(),
                "rejected record is",
                "rejected records are"
            )
        );
        for reject in report.sources.iter().flat_map(|s| &s.first_rejects) {
            let _ = writeln!(out, "  {}", reject.one_line());
        }
    }
    let unreadable: Vec<_> = report.unreadable().collect();
    if !unreadable.is_empty() {
        let _ = writeln!(
            out,
            "{} not be read and {} skipped (--skip-unreadable-files); {} in load_errors \
             with reason '{}':",
            counted(unreadable.len(), "file could", "files could"),
            if unreadable.len() == 1 { "was" } else { "were" },
            if unreadable.len() == 1 {
                "it is"
            } else {
                "they are"
            },
            crate::record::UNREADABLE_FILE
        );
        for file in unreadable {
            let _ = writeln!(out, "  {}", escape_controls(&file.file));
        }
    }
    out
}

/// The tables `etl -v` adds to its summary: each source, each table's rows, each check.
fn etl_tables(report: &EtlReport) -> String {
    let mut out = String::new();
    if !report.sources.is_empty() {
        let sources = numbers_right(text_table(
            &[
                "source",
                "files",
                "bytes",
                "records read",
                "staged",
                "rejected",
            ],
            report.sources.iter().map(|s| {
                let (files, bytes) = if s.read_by_warehouse && report.changes.is_some() {
                    // COPY read the files the ledger's plan listed in its manifest.
                    (
                        format!("{} (by Redshift)", thousands(s.yields.len() as i64)),
                        thousands(s.bytes as i64),
                    )
                } else if s.read_by_warehouse {
                    ("(by Redshift)".to_string(), "-".to_string())
                } else {
                    (thousands(s.files as i64), thousands(s.bytes as i64))
                };
                vec![
                    s.source.to_string(),
                    files,
                    bytes,
                    thousands(s.records as i64),
                    thousands(s.staged as i64),
                    thousands(s.rejected as i64),
                ]
            }),
        ));
        let _ = writeln!(out, "{sources}");
    }
    let tables = numbers_right(text_table(
        &["table", "rows"],
        report
            .tables
            .iter()
            .map(|(name, rows)| vec![name.to_string(), thousands(*rows)]),
    ));
    let _ = writeln!(out, "{tables}");
    if !report.checks.is_empty() {
        let _ = writeln!(out, "{}", checks_table(&report.checks));
    }
    out
}

/// Right-aligns every cell of `table` that holds a number (`1,602`, `0.013`).
fn numbers_right(mut table: Table) -> Table {
    for row in table.row_iter_mut() {
        for cell in row.iter_mut() {
            let text = cell.get_content();
            let numeric = !text.is_empty()
                && text
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == ',' || c == '.' || c == '-');
            if numeric {
                cell.align(format::Alignment::RIGHT);
            }
        }
    }
    table
}

/// The summary's line of the checks: how many passed, and after an incremental merge which
/// rows they read.
fn checks_line(outcomes: &[crate::checks::CheckOutcome]) -> String {
    use crate::checks::RowsRead;
    let ran: Vec<_> = outcomes.iter().filter(|c| c.ran()).collect();
    let passed = ran.iter().filter(|c| c.passed()).count();
    let mut line = format!("checks: {passed} of {} passed", ran.len());
    let on_changed = ran.iter().filter(|c| c.rows == RowsRead::Changed).count();
    let not_run = outcomes.len() - ran.len();
    if on_changed > 0 || not_run > 0 {
        line.push_str(&format!(
            " ({on_changed} on the rows this load changed, {} on all rows; {not_run} not run: \
             their tables did not change)",
            ran.len() - on_changed
        ));
    }
    line
}

/// One quality check for a JSON document: its name, whether it passed, which rows it read
/// (all, changed, unchanged: see [`crate::checks::RowsRead`]), rows examined, failures and
/// seconds.
fn check_json(o: &crate::checks::CheckOutcome) -> Value {
    json!({
        "name": o.name,
        "passed": o.passed(),
        "rows": o.rows.label(),
        "rows_examined": o.examined,
        "failures": o.failures,
        "seconds": o.elapsed.as_secs_f64(),
    })
}

/// The summary of an `etl` run as one JSON document (`etl --format json`), with the figures
/// of [`etl_summary`]: for schedulers.
pub fn etl_json(report: &EtlReport) -> String {
    let (mode, reason) = match &report.mode {
        LoadMode::FullRefresh(why) => ("full_refresh", Some(why.as_str())),
        LoadMode::Incremental => ("incremental", None),
        LoadMode::NothingNew => ("nothing_new", None),
    };
    let sources: Vec<Value> = report
        .sources
        .iter()
        .map(|s| {
            json!({
                "source": s.source,
                "read_by_warehouse": s.read_by_warehouse,
                "files": if s.read_by_warehouse { s.yields.len() as u64 } else { s.files },
                "bytes": s.bytes,
                "records": s.records,
                "staged": s.staged,
                "rejected": s.rejected,
                "first_rejects": s.first_rejects.iter().map(|r| json!({
                    "file": r.file, "line": r.line, "reason": r.reason,
                })).collect::<Vec<_>>(),
                "unreadable_files": s.unreadable.iter().map(|r| r.file.clone()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let tables: Map<String, Value> = report
        .tables
        .iter()
        .map(|(name, rows)| (name.to_string(), json!(rows)))
        .collect();
    let checks: Vec<Value> = report.checks.iter().map(check_json).collect();
    let phases: Map<String, Value> = report
        .phases
        .iter()
        .map(|(name, d)| (name.to_string(), json!(d.as_secs_f64())))
        .collect();
    let changes = report.changes.as_ref().map(|c| {
        json!({
            "new": c.new, "changed": c.changed, "grown": c.appended, "unchanged": c.unchanged,
            "touched": c.touched, "no_longer_found": c.gone,
        })
    });
    let document = json!({
        "warehouse": report.warehouse,
        "committed": true,
        "load": { "mode": mode, "reason": reason, "files": changes },
        "created_tables": report.created,
        "sources": sources,
        "rejected": report.rejected(),
        "tables": tables,
        "songplays_matched": report.matched_plays.map(|(_, matched)| matched),
        "checks_passed": report.checks.iter().all(|c| c.passed()),
        "checks": checks,
        "seconds": phases,
        "peak_memory_bytes": report.peak_memory,
    });
    format!("{document:#}\n")
}

/// The rejected records `load_errors` holds (see [`crate::sql::REJECTS`]), as a table: source,
/// file, line, reason, raw text; `total` says how many there are in all.
pub fn rejects_table(result: &QueryResult, total: i64) -> String {
    if total == 0 {
        return "load_errors holds no rejected record\n".to_string();
    }
    let table = text_table(
        &["source", "file", "line", "reason", "raw text"],
        result.rows.iter().map(|row| {
            row.iter()
                .map(|cell| {
                    let text = escape_controls(&cell.to_string());
                    match text.char_indices().nth(100) {
                        Some((cut, _)) => format!("{}...", &text[..cut]),
                        None => text,
                    }
                })
                .collect()
        }),
    );
    let shown = result.rows.len() as i64;
    let more = if total > shown {
        format!(" (the first {shown} shown)")
    } else {
        String::new()
    };
    format!(
        "{} in load_errors{more}\n{table}",
        counted(total, "rejected record", "rejected records")
    )
}

/// The quality checks as a table: name, which rows it read, rows examined, rows failing,
/// seconds.
pub fn checks_table(outcomes: &[crate::checks::CheckOutcome]) -> Table {
    text_table(
        &["check", "rows", "rows examined", "failures", "seconds"],
        outcomes.iter().map(|o| {
            vec![
                o.name.clone(),
                o.rows.label().to_string(),
                o.examined.to_string(),
                o.failures.to_string(),
                format!("{:.3}", o.elapsed.as_secs_f64()),
            ]
        }),
    )
}

/// The quality checks as one JSON document for scripts and schedulers: the warehouse, whether
/// every check passed, and each check with its rows examined, failures, seconds and (when it
/// failed) its offending rows as objects of column to value.
pub fn checks_json(warehouse: &str, outcomes: &[crate::checks::CheckOutcome]) -> String {
    let checks: Vec<Value> = outcomes
        .iter()
        .map(|o| {
            let rows: Vec<Value> = o
                .sample
                .rows
                .iter()
                .map(|row| {
                    let fields: Map<String, Value> = o
                        .sample
                        .columns
                        .iter()
                        .cloned()
                        .zip(row.iter().map(cell_json))
                        .collect();
                    Value::Object(fields)
                })
                .collect();
            let mut check = check_json(o);
            check["offending_rows"] = Value::Array(rows);
            check
        })
        .collect();
    let document = json!({
        "warehouse": warehouse,
        "passed": outcomes.iter().all(|o| o.passed()),
        "checks": checks,
    });
    format!("{document:#}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer() -> Answer {
        Answer {
            name: "top_songs",
            title: "Most played songs",
            result: QueryResult {
                columns: vec!["title".into(), "plays".into()],
                rows: vec![
                    vec![Cell::Text("Hey, \"Jude\"".into()), Cell::Int(3)],
                    vec![Cell::Null, Cell::Float(1.5)],
                ],
            },
        }
    }

    #[test]
    fn csv_quotes_and_single_answer_has_no_section_line() {
        let out = render_answers("w", &[answer()], Format::Csv);
        assert_eq!(out, "title,plays\n\"Hey, \"\"Jude\"\"\",3\n,1.5\n");
        let two = render_answers("w", &[answer(), answer()], Format::Csv);
        assert!(two.starts_with("# top_songs: Most played songs\ntitle,plays\n"));
    }

    #[test]
    fn json_is_one_document_with_typed_values() {
        let out = render_answers("duckdb x", &[answer()], Format::Json);
        let doc: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(doc["warehouse"], "duckdb x");
        assert_eq!(doc["answers"][0]["rows"][0]["plays"], 3);
        assert_eq!(doc["answers"][0]["rows"][1]["title"], Value::Null);
    }

    #[test]
    fn data_cannot_drive_a_terminal_or_a_spreadsheet() {
        let hostile = Answer {
            name: "top_songs",
            title: "Most played songs",
            result: QueryResult {
                columns: vec!["title".into(), "plays".into()],
                rows: vec![
                    vec![
                        Cell::Text("=HYPERLINK(\"x\")\u{1b}[2J".into()),
                        Cell::Int(-3),
                    ],
                    vec![Cell::Text("@SUM(A1)".into()), Cell::Float(-1.5)],
                    vec![Cell::Text("-1+1".into()), Cell::Int(1)],
                ],
            },
        };
        let table = render_answers("w", std::slice::from_ref(&hostile), Format::Table);
        assert!(!table.contains('\u{1b}'), "{table}");
        assert!(table.contains("\\u{1b}[2J"), "{table}");
        let csv = render_answers("w", &[hostile], Format::Csv);
        assert_eq!(
            csv,
            "title,plays\n\"'=HYPERLINK(\"\"x\"\")\u{1b}[2J\",-3\n'@SUM(A1),-1.5\n'-1+1,1\n"
        );
    }

    #[test]
    fn table_has_title_and_headers() {
        let out = render_answers("w", &[answer()], Format::Table);
        assert!(out.starts_with("Most played songs\n"));
        assert!(out.contains("title") && out.contains("Hey, \"Jude\""));
    }
}
