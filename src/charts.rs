//! The answers as bar charts, drawn once for every output: inline SVG for the HTML report
//! (`analysis --html`) and PNG files for slides and chat (`analysis --png`). What is charted and
//! how (volumes as columns in order, rankings as horizontal bars with the first on top, counts
//! as numbers, an empty answer as "no plays yet") lives here, so both outputs agree.
//!
//! Text is laid out (and, in PNGs, drawn) with DejaVu Sans, bundled in `assets/fonts` under its
//! own licence, so a chart looks the same on a machine with no fonts installed.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::{anyhow, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::report::Answer;
use crate::warehouse::Cell;

/// How an answer is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chart {
    /// Volume over a sequence (hours, weekdays, days...) or the levels: vertical bars in order.
    Columns,
    /// A ranking: horizontal bars, the first on top.
    Ranking,
    /// One number (the counts): no chart.
    Number,
}

pub fn chart_of(name: &str) -> Chart {
    match name {
        "song_count" | "artist_count" => Chart::Number,
        "top_users" | "top_artists" | "top_songs" | "both_levels" => Chart::Ranking,
        _ => Chart::Columns,
    }
}

/// Whether the answer has nothing to draw: no rows, or a chart whose every bar is zero.
pub fn has_no_plays(answer: &Answer) -> bool {
    answer.result.rows.is_empty()
        || (chart_of(answer.name) != Chart::Number
            && answer.result.rows.iter().all(|row| value(row) == 0))
}

/// What an empty chart says instead of drawing bars.
pub const NO_PLAYS: &str = "No plays yet: the warehouse is empty (run etl to fill it).";

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
            c if c.is_control() || crate::record::is_bidi_control(c) => ' ',
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

/// The bundled font, registered with plotters once for the process.
fn register_font() {
    static FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a known-good TrueType file compiled in: failing here is a build defect.
        if plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_err() {
            panic!("the bundled DejaVu Sans is not a font");
        }
    });
}

/// A drawing error in anyhow's terms (plotters' errors are generic over the backend).
fn drawn<T, E: Display>(result: Result<T, E>) -> Result<T> {
    result.map_err(|e| anyhow!("drawing a chart: {e}"))
}

/// Pixel size of a chart at `scale` (1 for the page, 2 for PNGs sharp on slides).
fn size_of(answer: &Answer, scale: u32) -> (u32, u32) {
    let (width, height) = match chart_of(answer.name) {
        _ if has_no_plays(answer) => (640, 160),
        Chart::Ranking => (640, 60 + 26 * answer.result.rows.len() as u32),
        _ => (640, 320),
    };
    (width * scale, height * scale)
}

/// Draws `answer` onto `root`, with its title as a caption when `caption` (a PNG stands alone;
/// the page has the title above the chart). An answer with no plays says so in the middle.
fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    answer: &Answer,
    scale: u32,
    caption: bool,
) -> Result<()> {
    let px = |n: u32| n * scale;
    let font = |size: u32| ("sans-serif", px(size)).into_font();
    drawn(root.fill(&WHITE))?;
    let root = if caption {
        drawn(root.margin(px(6), 0, 0, 0).titled(answer.title, font(18)))?
    } else {
        root.clone()
    };
    if has_no_plays(answer) {
        let (width, height) = root.dim_in_pixel();
        let style = font(15)
            .color(&RGBColor(0x97, 0x5a, 0x16))
            .pos(Pos::new(HPos::Center, VPos::Center));
        drawn(root.draw(&Text::new(
            NO_PLAYS,
            (width as i32 / 2, height as i32 / 2),
            style,
        )))?;
        return Ok(());
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
    let last = count.saturating_sub(1);
    let bar_colour = RGBColor(0x2b, 0x6c, 0xb0);
    let name_of = |segment: &SegmentValue<u32>| match segment {
        SegmentValue::CenterOf(i) => bars
            .get(*i as usize)
            .map(|(label, _)| label.clone())
            .unwrap_or_default(),
        _ => String::new(),
    };
    match chart_of(answer.name) {
        Chart::Ranking => {
            let mut chart = drawn(
                ChartBuilder::on(&root)
                    .margin(px(12))
                    .x_label_area_size(px(28))
                    .y_label_area_size(px(230))
                    .build_cartesian_2d(0..top, (0..last).into_segmented()),
            )?;
            drawn(
                chart
                    .configure_mesh()
                    .disable_y_mesh()
                    .label_style(font(12))
                    .axis_desc_style(font(12))
                    .y_labels(count as usize)
                    // The first of the ranking on top.
                    .y_label_formatter(&|segment| match segment {
                        SegmentValue::CenterOf(i) => {
                            name_of(&SegmentValue::CenterOf(last.saturating_sub(*i)))
                        }
                        _ => String::new(),
                    })
                    .x_desc("plays")
                    .draw(),
            )?;
            drawn(
                chart.draw_series(
                    Histogram::horizontal(&chart)
                        .style(bar_colour.filled())
                        .margin(px(4))
                        .data(
                            bars.iter()
                                .enumerate()
                                .map(|(i, (_, v))| (last.saturating_sub(i as u32), *v)),
                        ),
                ),
            )?;
        }
        _ => {
            let mut chart = drawn(
                ChartBuilder::on(&root)
                    .margin(px(12))
                    .x_label_area_size(px(40))
                    .y_label_area_size(px(60))
                    .build_cartesian_2d((0..last).into_segmented(), 0..top),
            )?;
            drawn(
                chart
                    .configure_mesh()
                    .disable_x_mesh()
                    .label_style(font(12))
                    .axis_desc_style(font(12))
                    .x_labels(count.min(31) as usize)
                    .x_label_formatter(&name_of)
                    .y_desc(answer.result.columns.last().map_or("", String::as_str))
                    .draw(),
            )?;
            drawn(
                chart.draw_series(
                    Histogram::vertical(&chart)
                        .style(bar_colour.filled())
                        .margin(px(2))
                        .data(bars.iter().enumerate().map(|(i, (_, v))| (i as u32, *v))),
                ),
            )?;
        }
    }
    Ok(())
}

/// The answer's chart as an SVG element for the page, or `None` for an answer shown as a number
/// or one with no plays (the page says so in words).
pub fn svg(answer: &Answer) -> Result<Option<String>> {
    let kind = chart_of(answer.name);
    if kind == Chart::Number || has_no_plays(answer) {
        return Ok(None);
    }
    register_font();
    let mut svg = String::new();
    {
        let size = size_of(answer, 1);
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        draw(&root, answer, 1, false)?;
        drawn(root.present())?;
    }
    Ok(Some(svg))
}

/// Writes every charted answer as `DIR/NAME.png` (the answer's name, e.g. `plays_by_hour.png`),
/// at twice the page's size, each titled; an answer with no plays is a picture saying so. The
/// directory is created when missing; each file is written whole or not at all. Returns the
/// files written, in the answers' order.
pub fn write_pngs(dir: &Path, answers: &[Answer]) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "cannot create {} for the charts: check the path and its permissions",
            dir.display()
        )
    })?;
    register_font();
    let mut written = Vec::new();
    for answer in answers {
        if chart_of(answer.name) == Chart::Number {
            continue;
        }
        let path = dir.join(format!("{}.png", answer.name));
        let cannot = |e: &dyn Display| {
            anyhow!(
                "cannot write the chart {}: {e}: check that {} is writable",
                path.display(),
                dir.display()
            )
        };
        // plotters picks the encoder from the extension: the temporary file ends in .png too.
        let temporary =
            crate::cli::file_beside(&path, crate::cli::SHARED_FILE).map_err(|e| cannot(&e))?;
        {
            let size = size_of(answer, 2);
            let root = BitMapBackend::new(temporary.path(), size).into_drawing_area();
            draw(&root, answer, 2, true)?;
            root.present().map_err(|e| cannot(&e))?;
        }
        temporary.persist(&path).map_err(|e| cannot(&e.error))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::warehouse::QueryResult;

    fn answer(name: &'static str, rows: Vec<Vec<Cell>>) -> Answer {
        Answer {
            name,
            title: "A title",
            result: QueryResult {
                columns: vec!["key".into(), "plays".into()],
                rows,
            },
        }
    }

    #[test]
    fn labels_carry_no_markup_and_stay_short() {
        let row = [
            Cell::Text("SO1".into()),
            Cell::Text("<b>\"Fish & Chips\"</b>\n".into()),
            Cell::Text("x".repeat(40)),
            Cell::Int(1),
        ];
        let text = label("top_songs", &row);
        assert!(!text.contains(['<', '>', '&', '"', '\n']), "{text}");
        assert_eq!(text.chars().count(), 32);
        assert!(text.ends_with('…'));
    }

    #[test]
    fn all_zero_or_no_rows_is_no_plays_but_a_zero_count_is_a_number() {
        assert!(has_no_plays(&answer("plays_by_hour", Vec::new())));
        assert!(has_no_plays(&answer(
            "plays_by_hour",
            vec![vec![Cell::Int(3), Cell::Int(0)]]
        )));
        assert!(!has_no_plays(&answer(
            "plays_by_hour",
            vec![vec![Cell::Int(3), Cell::Int(2)]]
        )));
        assert!(!has_no_plays(&answer(
            "song_count",
            vec![vec![Cell::Int(0)]]
        )));
    }

    #[test]
    fn pngs_are_written_for_charts_only_and_leave_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("new").join("charts");
        let answers = [
            answer(
                "plays_by_hour",
                (0..24).map(|h| vec![Cell::Int(h), Cell::Int(h)]).collect(),
            ),
            answer("top_users", Vec::new()),
            answer("song_count", vec![vec![Cell::Int(7)]]),
        ];
        let written = write_pngs(&out, &answers).unwrap();
        assert_eq!(
            written,
            [out.join("plays_by_hour.png"), out.join("top_users.png")]
        );
        let mut names: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["plays_by_hour.png", "top_users.png"]);
        for path in written {
            let bytes = std::fs::read(path).unwrap();
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        }
    }
}
