//! `analysis --html FILE`: every answer in one self-contained HTML file, readable offline and
//! mailable. The volume questions and the rankings are bar charts (inline SVG from `charts`,
//! scaling to the page), each beside its table, with a note where the first or last period is
//! partial; the counts, and a volume of one bar, are shown as numbers; an empty warehouse says it
//! holds no plays yet instead of drawing empty charts. Nothing is fetched when the file is
//! opened: no script, stylesheet, font or image comes from elsewhere.

use std::fmt::Write;

use anyhow::{anyhow, Result};

use crate::charts;
use crate::report::Answer;
use crate::warehouse::Cell;

/// Text for HTML: the five characters that could open markup are escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            // A direction override would show the text around it reversed.
            c if crate::record::is_bidi_control(c) => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    out
}

fn table_html(answer: &Answer) -> String {
    let mut out = String::from("<table><thead><tr>");
    for column in &answer.result.columns {
        let _ = write!(out, "<th>{}</th>", escape(column));
    }
    out.push_str("</tr></thead><tbody>");
    for row in &answer.result.rows {
        out.push_str("<tr>");
        for cell in row {
            let class = if matches!(cell, Cell::Int(_) | Cell::Float(_)) {
                " class=\"n\""
            } else {
                ""
            };
            let _ = write!(out, "<td{class}>{}</td>", escape(&cell.to_string()));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;color:#1a202c}\
h1{margin-bottom:.2rem}.meta{color:#4a5568;margin-top:0}\
section{border-top:1px solid #e2e8f0;padding:1rem 0}\
.pair{display:flex;flex-wrap:wrap;gap:1.5rem;align-items:flex-start}\
table{border-collapse:collapse;font-size:.85rem}th,td{padding:.2rem .6rem;text-align:left}\
th{border-bottom:1px solid #a0aec0}td.n{text-align:right}\
.chart{flex:1 1 640px;max-width:640px}.note{color:#4a5568;font-size:.85rem}\
.number{font-size:2.5rem;font-weight:600}.empty{color:#975a16;font-style:italic}";

/// The whole report: every answer, charted where a chart says more than its table, with when
/// and from which warehouse it was built. `built_at` is a UTC time for the header.
pub fn render(warehouse: &str, built_at: &str, answers: &[Answer]) -> Result<String> {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Sparkify: the answers</title><style>{STYLE}</style></head><body>\
         <h1>Sparkify: the answers</h1>\
         <p class=\"meta\">Built {} from {}.</p>",
        escape(built_at),
        escape(warehouse)
    );
    for answer in answers {
        let _ = write!(
            out,
            "<section id=\"{}\"><h2>{}</h2>",
            escape(answer.name),
            escape(answer.title)
        );
        if charts::has_no_plays(answer) {
            let _ = write!(out, "<p class=\"empty\">{}</p>", escape(charts::NO_PLAYS));
        } else if let Some(svg) = charts::svg(answer)? {
            let note = charts::partial_note(answer)
                .map(|note| format!("<p class=\"note\">{}</p>", escape(&note)))
                .unwrap_or_default();
            let _ = write!(
                out,
                "<div class=\"pair\"><div class=\"chart\">{svg}{note}</div>{}</div>",
                table_html(answer)
            );
        } else {
            let number = charts::number_text(answer);
            let _ = write!(out, "<p class=\"number\">{}</p>", escape(&number));
        }
        out.push_str("</section>");
    }
    out.push_str("</body></html>\n");
    Ok(out)
}

/// Writes the page to `path` whole or not at all (see [`crate::cli::file_beside`]).
/// Its directory is created when missing, as `--png` does; an error names the report's path
/// and the cause, never the temporary file it was written to first.
pub fn write(path: &std::path::Path, page: &str) -> Result<()> {
    use std::io::Write as _;
    let directory = path.parent().filter(|p| !p.as_os_str().is_empty());
    let written = directory
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| crate::cli::file_beside(path, crate::cli::SHARED_FILE))
        .and_then(|mut file| {
            file.write_all(page.as_bytes())?;
            file.persist(path).map_err(|e| e.error)?;
            Ok(())
        });
    written.map_err(|e| {
        // tempfile's errors name the temporary file; only the cause is kept.
        let cause = e
            .raw_os_error()
            .map(|code| std::io::Error::from_raw_os_error(code).to_string())
            .unwrap_or_else(|| e.kind().to_string());
        anyhow!(
            "cannot write the report to {}: {cause}: check that its directory is writable",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::warehouse::QueryResult;

    fn answer(name: &'static str, columns: &[&str], rows: Vec<Vec<Cell>>) -> Answer {
        Answer {
            name,
            title: "A title",
            result: QueryResult {
                columns: columns.iter().map(|c| c.to_string()).collect(),
                rows,
            },
        }
    }

    #[test]
    fn volumes_and_rankings_are_charts_and_counts_are_numbers() {
        let answers = [
            answer(
                "plays_by_hour",
                &["hour", "plays"],
                (0..24)
                    .map(|h| vec![Cell::Int(h), Cell::Int(h * 3)])
                    .collect(),
            ),
            answer(
                "top_songs",
                &["song_id", "title", "artist", "plays"],
                vec![vec![
                    Cell::Text("SO1".into()),
                    Cell::Text("<script>alert(1)</script>".into()),
                    Cell::Null,
                    Cell::Int(9),
                ]],
            ),
            answer("song_count", &["songs"], vec![vec![Cell::Int(71)]]),
        ];
        let html = render("duckdb x", "2026-11-28T19:00:00Z", &answers).unwrap();
        assert_eq!(html.matches("<svg").count(), 2, "{html}");
        assert!(html.contains("<p class=\"number\">71</p>"));
        assert!(!html.contains("<script"), "data must not become markup");
        assert!(html.contains("&lt;script&gt;"));
        for fetch in ["<link", "src=", "url(", "@import"] {
            assert!(!html.contains(fetch), "{fetch}");
        }
    }

    #[test]
    fn an_empty_warehouse_says_so_instead_of_drawing() {
        let answers = [
            answer("plays_by_hour", &["hour", "plays"], Vec::new()),
            answer(
                "top_users",
                &["user_id", "first_name", "last_name", "level", "plays"],
                Vec::new(),
            ),
        ];
        let html = render("duckdb x", "now", &answers).unwrap();
        assert!(!html.contains("<svg"), "{html}");
        assert_eq!(html.matches("No plays yet").count(), 2);
    }
}
