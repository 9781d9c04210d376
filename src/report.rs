//! Renders results for people and for scripts: the `etl` summary, and `analysis` answers as
//! titled tables, CSV or one JSON document.

use std::fmt::Write;

use prettytable::{format, Cell as TableCell, Row as TableRow, Table};
use serde_json::{json, Map, Value};

use crate::etl::{EtlReport, Inputs};
use crate::record::escape_controls;
use crate::warehouse::{Cell, QueryResult};

/// How `analysis` prints its answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Titled tables for people.
    Table,
    /// CSV with a header row; with several questions, each is preceded by a `# name: title` line.
    /// A text cell starting with = + - @ (or a tab or carriage return) is written with a `'`
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

/// What `etl --dry-run` prints: the files and bytes a load would read, per source.
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
    use crate::ledger::LoadMode;
    let files = report.changes.as_ref().map(|c| {
        let mut parts = vec![
            format!("{} new", c.new),
            format!("{} changed", c.changed),
            format!("{} unchanged", c.unchanged),
        ];
        if c.gone > 0 {
            parts.push(format!(
                "{} no longer found (their records stay until --full-refresh)",
                c.gone
            ));
        }
        format!("files: {}", parts.join(", "))
    });
    let files = files.map_or(String::new(), |f| format!("; {f}"));
    match &report.mode {
        LoadMode::FullRefresh(why) => format!("load: full refresh ({why}){files}"),
        LoadMode::Incremental => format!("load: incremental, only the new files read{files}"),
        LoadMode::NothingNew => {
            format!("load: nothing new, nothing read or changed; the warehouse is as it was{files}")
        }
    }
}

/// The summary `etl` prints when it is done.
pub fn etl_summary(report: &EtlReport) -> String {
    let sources = text_table(
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
                    format!("{} (by Redshift)", s.yields.len()),
                    s.bytes.to_string(),
                )
            } else if s.read_by_warehouse {
                ("(by Redshift)".to_string(), "-".to_string())
            } else {
                (s.files.to_string(), s.bytes.to_string())
            };
            vec![
                s.source.to_string(),
                files,
                bytes,
                s.records.to_string(),
                s.staged.to_string(),
                s.rejected.to_string(),
            ]
        }),
    );
    let tables = text_table(
        &["table", "rows"],
        report
            .tables
            .iter()
            .map(|(name, rows)| vec![name.to_string(), rows.to_string()]),
    );
    let checks = (!report.checks.is_empty()).then(|| checks_table(&report.checks));
    let total: f64 = report.phases.iter().map(|(_, d)| d.as_secs_f64()).sum();
    let phases: Vec<String> = report
        .phases
        .iter()
        .map(|(name, d)| format!("{name} {:.2}s", d.as_secs_f64()))
        .collect();
    // Nothing read: no table of sources.
    let sources = if report.sources.is_empty() {
        String::new()
    } else {
        format!("{sources}\n")
    };
    let mut out = format!(
        "etl into {}\n{}\n{sources}{tables}\n",
        report.warehouse,
        load_mode_line(report)
    );
    match checks {
        Some(checks) => {
            let _ = writeln!(out, "{checks}");
        }
        None if report.mode == crate::ledger::LoadMode::NothingNew => {}
        None => {
            let _ = writeln!(out, "quality checks skipped (--no-checks)");
        }
    }
    let _ = writeln!(out, "time: {} (total {total:.2}s)", phases.join(", "));
    if let Some(bytes) = report.peak_memory {
        let _ = writeln!(out, "peak memory: {} MiB", bytes >> 20);
    }
    if report.rejected() > 0 {
        let _ = writeln!(
            out,
            "{} rejected record(s) are in load_errors (file, line, reason, raw_text)",
            report.rejected()
        );
    }
    let unreadable: Vec<_> = report.unreadable().collect();
    if !unreadable.is_empty() {
        let _ = writeln!(
            out,
            "{} file(s) could not be read and were skipped (--skip-unreadable-files); they are in \
             load_errors with reason '{}':",
            unreadable.len(),
            crate::load::UNREADABLE_FILE
        );
        for file in unreadable {
            let _ = writeln!(out, "  {}", escape_controls(&file.file));
        }
    }
    out
}

/// The quality checks as a table: name, rows examined, rows failing, seconds.
pub fn checks_table(outcomes: &[crate::checks::CheckOutcome]) -> Table {
    text_table(
        &["check", "rows examined", "failures", "seconds"],
        outcomes.iter().map(|o| {
            vec![
                o.name.clone(),
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
            json!({
                "name": o.name,
                "passed": o.passed(),
                "rows_examined": o.examined,
                "failures": o.failures,
                "seconds": o.elapsed.as_secs_f64(),
                "offending_rows": rows,
            })
        })
        .collect();
    let document = json!({
        "warehouse": warehouse,
        "passed": outcomes.iter().all(|o| o.passed()),
        "checks": checks,
    });
    format!("{document:#}\n")
}

/// A reject as one line for people: `file:line: reason`, control characters escaped.
pub fn reject_line(reject: &crate::record::Reject) -> String {
    let place = match reject.line {
        Some(line) => format!("{}:{line}", reject.file),
        None => reject.file.clone(),
    };
    escape_controls(&format!("{place}: {}", reject.reason))
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
