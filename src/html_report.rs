//! `analysis --html FILE`: every answer in one self-contained HTML file, readable offline and
//! mailable. The volume questions and the rankings are bar charts (SVG drawn by plotters,
//! inline), each beside its table; the counts are shown as numbers; an empty warehouse says it
//! holds no plays yet instead of drawing empty charts. Nothing is fetched when the file is
//! opened: no script, stylesheet, font or image comes from elsewhere.

use std::fmt::Write;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use crate::report::Answer;
use crate::warehouse::Cell;

/// How an answer is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chart {
    /// Volume over a sequence (hours, weekdays, days...) or the levels: vertical bars in order.
    Columns,
    /// A ranking: horizontal bars, the first on top.
    Ranking,
    /// One number (the counts): no chart.
    Number,
}

fn chart_of(name: &str) -> Chart {
    match name {
        "song_count" | "artist_count" => Chart::Number,
        "top_users" | "top_artists" | "top_songs" | "both_levels" => Chart::Ranking,
        _ => Chart::Columns,
    }
}

/// The label of one row of `answer` on its chart: the names a reader knows the row by.
fn label(name: &str, row: &[Cell]) -> String {
    let text = |i: usize| row.get(i).map(Cell::to_string).unwrap_or_default();
    let label = match name {
        "plays_by_weekday" => text(1),
        "plays_by_week" => format!("{}-W{:0>2}", text(0), text(1)),
        "top_users" | "both_levels" => format!("{} {}", text(1), text(2)),
        "top_artists" => text(1),
        "top_songs" => format!("{} ({})", text(1), text(2)),
        _ => text(0),
    };
    // Data, shown in an SVG: no markup, no control character, not too long.
    let clean: String = label
        .chars()
        .map(|c| match c {
            '<' => '‹',
            '>' => '›',
            '&' => '+',
            '"' => '”',
            '\'' => '’',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    let clean = clean.trim();
    if clean.chars().count() > 32 {
        format!("{}…", clean.chars().take(31).collect::<String>())
    } else {
        clean.to_string()
    }
}

/// The bar of one row: its last column (plays, or users for the levels).
fn value(row: &[Cell]) -> u64 {
    match row.last() {
        Some(Cell::Int(n)) => u64::try_from(*n).unwrap_or(0),
        Some(Cell::Float(x)) if *x > 0.0 => *x as u64,
        _ => 0,
    }
}

/// The answer's chart as an SVG element, or `None` for an answer drawn as a number.
fn chart_svg(answer: &Answer) -> Result<Option<String>> {
    let kind = chart_of(answer.name);
    if kind == Chart::Number {
        return Ok(None);
    }
    let bars: Vec<(String, u64)> = answer
        .result
        .rows
        .iter()
        .map(|row| (label(answer.name, row), value(row)))
        .collect();
    let top = bars.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let top = top + top / 10 + 1;
    let count = bars.len() as u32;
    let (width, height) = match kind {
        Chart::Ranking => (640, 60 + 26 * count.max(1)),
        _ => (640, 320),
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
        let bar_colour = RGBColor(0x2b, 0x6c, 0xb0);
        let name_of = |segment: &SegmentValue<u32>| match segment {
            SegmentValue::CenterOf(i) => bars
                .get(*i as usize)
                .map(|(label, _)| label.clone())
                .unwrap_or_default(),
            _ => String::new(),
        };
        match kind {
            Chart::Ranking => {
                let mut chart = ChartBuilder::on(&root)
                    .margin(12)
                    .x_label_area_size(28)
                    .y_label_area_size(230)
                    .build_cartesian_2d(0..top, (0..count.saturating_sub(1)).into_segmented())
                    .map_err(|e| anyhow!("{e}"))?;
                chart
                    .configure_mesh()
                    .disable_y_mesh()
                    .y_labels(count as usize)
                    // The first of the ranking on top.
                    .y_label_formatter(&|segment| match segment {
                        SegmentValue::CenterOf(i) => name_of(&SegmentValue::CenterOf(
                            count.saturating_sub(1).saturating_sub(*i),
                        )),
                        _ => String::new(),
                    })
                    .x_desc("plays")
                    .draw()
                    .map_err(|e| anyhow!("{e}"))?;
                chart
                    .draw_series(
                        Histogram::horizontal(&chart)
                            .style(bar_colour.filled())
                            .margin(4)
                            .data(bars.iter().enumerate().map(|(i, (_, v))| {
                                (count.saturating_sub(1).saturating_sub(i as u32), *v)
                            })),
                    )
                    .map_err(|e| anyhow!("{e}"))?;
            }
            _ => {
                let mut chart = ChartBuilder::on(&root)
                    .margin(12)
                    .x_label_area_size(40)
                    .y_label_area_size(60)
                    .build_cartesian_2d((0..count.saturating_sub(1)).into_segmented(), 0..top)
                    .map_err(|e| anyhow!("{e}"))?;
                chart
                    .configure_mesh()
                    .disable_x_mesh()
                    .x_labels(count.min(31) as usize)
                    .x_label_formatter(&name_of)
                    .y_desc(answer.result.columns.last().map_or("", String::as_str))
                    .draw()
                    .map_err(|e| anyhow!("{e}"))?;
                chart
                    .draw_series(
                        Histogram::vertical(&chart)
                            .style(bar_colour.filled())
                            .margin(2)
                            .data(bars.iter().enumerate().map(|(i, (_, v))| (i as u32, *v))),
                    )
                    .map_err(|e| anyhow!("{e}"))?;
            }
        }
        root.present().map_err(|e| anyhow!("{e}"))?;
    }
    Ok(Some(svg))
}

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
        if answer.result.rows.is_empty()
            || (chart_of(answer.name) != Chart::Number
                && answer.result.rows.iter().all(|row| value(row) == 0))
        {
            out.push_str(
                "<p class=\"empty\">No plays yet: the warehouse is empty (run etl to fill it).</p>",
            );
        } else if let Some(svg) = chart_svg(answer)? {
            let _ = write!(
                out,
                "<div class=\"pair\"><div class=\"chart\">{svg}</div>{}</div>",
                table_html(answer)
            );
        } else {
            let number = answer
                .result
                .rows
                .first()
                .and_then(|row| row.first())
                .map(Cell::to_string)
                .unwrap_or_default();
            let _ = write!(out, "<p class=\"number\">{}</p>", escape(&number));
        }
        out.push_str("</section>");
    }
    out.push_str("</body></html>\n");
    Ok(out)
}

/// Writes the page to `path` whole or not at all: a temporary file beside it, then renamed.
pub fn write(path: &std::path::Path, page: &str) -> Result<()> {
    use std::io::Write as _;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let written = tempfile::NamedTempFile::new_in(dir).and_then(|mut file| {
        file.write_all(page.as_bytes())?;
        file.persist(path).map_err(|e| e.error)?;
        Ok(())
    });
    written.map_err(|e| {
        anyhow!(
            "cannot write the report to {}: {e}: check that its directory exists and is writable",
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
