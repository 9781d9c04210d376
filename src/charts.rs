//! The answers as bar charts, drawn once for every output: inline SVG for the HTML report
//! (`analysis --html`) and PNG files for slides and chat (`analysis --png`). What is charted and
//! how (volumes as columns in order, rankings as horizontal bars with the first on top, counts
//! and one-bar answers as numbers, an empty answer as "no plays yet", the first and last weeks,
//! months or years drawn lighter when the plays cover only part of them) lives here, so both
//! outputs agree. Column labels are thinned so that they never overlap, whatever the number of
//! bars; the SVG scales to the page and carries a title and a description for screen readers.
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

/// Whether `name` is one of the counts, which are numbers whatever their rows.
fn is_count(name: &str) -> bool {
    matches!(name, "song_count" | "artist_count")
}

/// How `answer` is drawn. A volume of one bar (every play in one year, or one month of data by
/// month) says no more than its number, so it is shown as one.
pub fn chart_of(answer: &Answer) -> Chart {
    match answer.name {
        name if is_count(name) => Chart::Number,
        "top_users" | "top_artists" | "top_songs" | "both_levels" => Chart::Ranking,
        _ if answer.result.rows.len() == 1 => Chart::Number,
        _ => Chart::Columns,
    }
}

/// Whether the answer has nothing to draw: no rows, or a chart whose every bar is zero.
pub fn has_no_plays(answer: &Answer) -> bool {
    answer.result.rows.is_empty()
        || (!is_count(answer.name) && answer.result.rows.iter().all(|row| value(row) == 0))
}

/// An answer shown as a number, in words: a count (`150`), or the one bar of a volume with
/// its label and unit (`2018: 6,820 plays`).
pub fn number_text(answer: &Answer) -> String {
    let Some(row) = answer.result.rows.first() else {
        return String::new();
    };
    let shown = |cell: Option<&Cell>| match cell {
        Some(Cell::Int(n)) => crate::words::thousands(*n),
        Some(cell) => cell.to_string(),
        None => String::new(),
    };
    if is_count(answer.name) {
        return shown(row.first());
    }
    let unit = answer.result.columns.last().map_or("", String::as_str);
    format!("{}: {} {unit}", label(answer.name, row), shown(row.last()))
}

/// A day as the number of days since 1970-01-01 (the proleptic Gregorian calendar's civil
/// days, as in Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// `YYYY-MM-DD` as days since 1970-01-01.
fn parse_day(text: &str) -> Option<i64> {
    let mut parts = text.trim().splitn(3, '-').map(|p| p.parse::<i64>().ok());
    Some(days_from_civil(
        parts.next()??,
        parts.next()??,
        parts.next()??,
    ))
}

/// The first and last day (days since 1970-01-01) of the period a row of a week, month or year
/// answer counts; `None` for the other answers.
fn period_of(name: &str, row: &[Cell]) -> Option<(i64, i64)> {
    let int = |i: usize| match row.get(i) {
        Some(Cell::Int(n)) => Some(*n),
        _ => None,
    };
    match name {
        "plays_by_year" => {
            let year = int(0)?;
            Some((days_from_civil(year, 1, 1), days_from_civil(year, 12, 31)))
        }
        "plays_by_month" => {
            let (year, month) = (int(0)?, int(1)?);
            let next = if month == 12 {
                (year + 1, 1)
            } else {
                (year, month + 1)
            };
            Some((
                days_from_civil(year, month, 1),
                days_from_civil(next.0, next.1, 1) - 1,
            ))
        }
        "plays_by_week" => {
            // ISO 8601: week 1 is the week (Monday to Sunday) holding 4 January.
            let (year, week) = (int(0)?, int(1)?);
            let january_4 = days_from_civil(year, 1, 4);
            // 1970-01-01 was a Thursday: +3 makes Monday 0.
            let monday = january_4 - (january_4 + 3).rem_euclid(7) + 7 * (week - 1);
            Some((monday, monday + 6))
        }
        _ => None,
    }
}

/// Which of the first and last bars count a period the plays cover only in part: the plays
/// begin after the first week, month or year begins (its `first_day` column), or end before
/// the last one ends (`last_day`). Such a bar is lower than a whole period's would be, and is
/// drawn lighter and said so.
pub fn partial_ends(answer: &Answer) -> (bool, bool) {
    let column = |name: &str| answer.result.columns.iter().position(|c| c == name);
    let (Some(first_day), Some(last_day)) = (column("first_day"), column("last_day")) else {
        return (false, false);
    };
    let rows = &answer.result.rows;
    let day = |row: &[Cell], i: usize| match row.get(i) {
        Some(Cell::Text(text)) => parse_day(text),
        _ => None,
    };
    let first = rows.first().and_then(|row| {
        let (start, _) = period_of(answer.name, row)?;
        Some(day(row, first_day)? > start)
    });
    let last = rows.last().and_then(|row| {
        let (_, end) = period_of(answer.name, row)?;
        Some(day(row, last_day)? < end)
    });
    (first.unwrap_or(false), last.unwrap_or(false))
}

/// The partial periods in words, for the page and the chart (`None` when there is none):
/// "Lighter bars: partial weeks (the plays run from 2018-11-01 to 2018-11-30)." Short enough
/// for one line under the chart.
pub fn partial_note(answer: &Answer) -> Option<String> {
    let (first, last) = partial_ends(answer);
    if !first && !last {
        return None;
    }
    let period = match answer.name {
        "plays_by_week" => "week",
        "plays_by_month" => "month",
        _ => "year",
    };
    let column = |name: &str| answer.result.columns.iter().position(|c| c == name);
    let text = |row: Option<&Vec<Cell>>, column: Option<usize>| {
        row.zip(column)
            .and_then(|(row, i)| row.get(i))
            .map(Cell::to_string)
            .unwrap_or_default()
    };
    let rows = &answer.result.rows;
    let begin = text(rows.first(), column("first_day"));
    let end = text(rows.last(), column("last_day"));
    Some(match (first, last) {
        (true, true) => {
            format!("Lighter bars: partial {period}s (the plays run from {begin} to {end}).")
        }
        (true, false) => format!("Lighter bar: a partial {period} (the plays begin on {begin})."),
        _ => format!("Lighter bar: a partial {period} (the plays end on {end})."),
    })
}

/// One label in `step` is drawn, so that labels `label_px` wide never overlap on a plot
/// `plot_px` wide holding `count` bars.
fn label_step(count: u32, label_px: u32, plot_px: u32) -> u32 {
    let fit = (plot_px / (label_px + 8).max(1)).max(1);
    count.div_ceil(fit).max(1)
}

/// What an empty chart says instead of drawing bars.
pub const NO_PLAYS: &str = "No plays yet: the warehouse is empty (run etl to fill it).";

/// The label of one row of `answer` on its chart: the names a reader knows the row by.
fn label(name: &str, row: &[Cell]) -> String {
    let text = |i: usize| row.get(i).map(Cell::to_string).unwrap_or_default();
    let label = match name {
        "plays_by_weekday" => text(1),
        "plays_by_week" => format!("{}-W{:0>2}", text(0), text(1)),
        "plays_by_month" => format!("{}-{:0>2}", text(0), text(1)),
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
    let (width, height) = match chart_of(answer) {
        _ if has_no_plays(answer) => (640, 160),
        Chart::Ranking => (640, 60 + 26 * answer.result.rows.len() as u32),
        _ if partial_note(answer).is_some() => (640, 344),
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
    // plotters draws a font of size S with an em of S / 1.24 (its size includes the line
    // spacing): sizes here are the em, so that a 12 px label is 12 px high on the page.
    let font = |size: u32| ("sans-serif", f64::from(px(size)) * 1.24).into_font();
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
    match chart_of(answer) {
        Chart::Ranking => {
            let mut chart = drawn(
                ChartBuilder::on(&root)
                    .margin(px(12))
                    .x_label_area_size(px(28))
                    .y_label_area_size(px(260))
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
            // The note on partial periods goes below the plot.
            let note = partial_note(answer);
            let (plot, below) = match &note {
                Some(_) => {
                    let (_, height) = root.dim_in_pixel();
                    let (plot, below) = root.split_vertically(height.saturating_sub(px(24)));
                    (plot, Some(below))
                }
                None => (root.clone(), None),
            };
            let (width, _) = plot.dim_in_pixel();
            // Labels are drawn at 12 px: at most 8 px a character in DejaVu Sans (digits are
            // 0.64 em wide).
            let widest = bars
                .iter()
                .map(|(label, _)| label.chars().count() as u32)
                .max()
                .unwrap_or(1);
            let step = label_step(count, px(8 * widest), width.saturating_sub(px(60 + 24)));
            let thinned = |segment: &SegmentValue<u32>| match segment {
                SegmentValue::CenterOf(i) if i % step == 0 => name_of(segment),
                _ => String::new(),
            };
            let mut chart = drawn(
                ChartBuilder::on(&plot)
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
                    .x_labels(count as usize)
                    .x_label_formatter(&thinned)
                    .y_desc(answer.result.columns.last().map_or("", String::as_str))
                    .draw(),
            )?;
            let (first_partial, last_partial) = partial_ends(answer);
            let partial = RGBColor(0x9d, 0xc0, 0xe6);
            drawn(
                chart.draw_series(
                    Histogram::vertical(&chart)
                        .style_func(|segment, _| {
                            let lighter = match segment {
                                SegmentValue::Exact(i) => {
                                    (*i == 0 && first_partial) || (*i == last && last_partial)
                                }
                                _ => false,
                            };
                            if lighter { partial } else { bar_colour }.filled()
                        })
                        .margin(px(2))
                        .data(bars.iter().enumerate().map(|(i, (_, v))| (i as u32, *v))),
                ),
            )?;
            if let (Some(note), Some(below)) = (note, below) {
                let style = font(12)
                    .color(&RGBColor(0x4a, 0x55, 0x68))
                    .pos(Pos::new(HPos::Left, VPos::Center));
                let (_, height) = below.dim_in_pixel();
                drawn(below.draw(&Text::new(note, (px(72) as i32, height as i32 / 2), style)))?;
            }
        }
    }
    Ok(())
}

/// The answer's chart as an SVG element for the page, or `None` for an answer shown as a number
/// or one with no plays (the page says so in words).
/// It scales to the width of the page, up to its own size (at which its labels are 12 px), and
/// carries a title and a description (what is drawn, the partial periods) for screen readers.
pub fn svg(answer: &Answer) -> Result<Option<String>> {
    let kind = chart_of(answer);
    if kind == Chart::Number || has_no_plays(answer) {
        return Ok(None);
    }
    register_font();
    let mut svg = String::new();
    let (width, height) = size_of(answer, 1);
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        draw(&root, answer, 1, false)?;
        drawn(root.present())?;
    }
    let Some(body) = svg
        .find("<svg")
        .and_then(|start| svg[start..].find('>').map(|end| start + end + 1))
    else {
        return Err(anyhow!("drawing a chart: the SVG has no <svg> element"));
    };
    let bars = answer.result.rows.len();
    let described = match kind {
        Chart::Ranking => format!("Horizontal bars, the first of {bars} on top."),
        _ => format!("Vertical bars, {bars} in order."),
    };
    let described = match partial_note(answer) {
        Some(note) => format!("{described} {note}"),
        None => described,
    };
    let id = answer.name;
    let opening = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" \
         width=\"{width}\" height=\"{height}\" role=\"img\" \
         aria-labelledby=\"{id}-title {id}-desc\" \
         style=\"max-width:100%;height:auto\">\
         <title id=\"{id}-title\">{}</title><desc id=\"{id}-desc\">{}</desc>",
        svg_text(answer.title),
        svg_text(&described)
    );
    Ok(Some(format!("{opening}{}", &svg[body..])))
}

/// Text inside an SVG element: the characters that could open markup escaped.
fn svg_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
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
        if chart_of(answer) == Chart::Number {
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

    fn weeks(n: i64) -> Answer {
        // ISO weeks from 2018-W44 on, every day of each played, but the first week begins on a
        // Thursday (2018-11-01) and the last ends on a Wednesday.
        let rows = (0..n)
            .map(|i| {
                let (year, week) = if 44 + i <= 52 {
                    (2018, 44 + i)
                } else {
                    (2019, i - 8)
                };
                let (start, end) =
                    period_of("plays_by_week", &[Cell::Int(year), Cell::Int(week)]).unwrap();
                let first = if i == 0 { start + 3 } else { start };
                let last = if i == n - 1 { end - 4 } else { end };
                vec![
                    Cell::Int(year),
                    Cell::Int(week),
                    Cell::Text(day_text(first)),
                    Cell::Text(day_text(last)),
                    Cell::Int(100 + i),
                ]
            })
            .collect();
        Answer {
            name: "plays_by_week",
            title: "Plays by ISO week",
            result: QueryResult {
                columns: ["iso_year", "week", "first_day", "last_day", "plays"]
                    .map(String::from)
                    .to_vec(),
                rows,
            },
        }
    }

    /// Days since 1970-01-01 as `YYYY-MM-DD` (the inverse of [`parse_day`], for tests).
    fn day_text(days: i64) -> String {
        (1900..2100)
            .flat_map(|y| (1..=12).flat_map(move |m| (1..=31).map(move |d| (y, m, d))))
            // 31 November is 1 December: only days of the month itself count.
            .filter(|&(y, m, d)| {
                let next = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                d <= days_from_civil(next.0, next.1, 1) - days_from_civil(y, m, 1)
            })
            .find(|&(y, m, d)| days_from_civil(y, m, d) == days)
            .map(|(y, m, d)| format!("{y}-{m:02}-{d:02}"))
            .unwrap()
    }

    #[test]
    fn iso_weeks_and_months_span_the_right_days() {
        let week = |year, week| {
            let (start, end) =
                period_of("plays_by_week", &[Cell::Int(year), Cell::Int(week)]).unwrap();
            (day_text(start), day_text(end))
        };
        assert_eq!(week(2018, 44), ("2018-10-29".into(), "2018-11-04".into()));
        assert_eq!(week(2019, 1), ("2018-12-31".into(), "2019-01-06".into()));
        assert_eq!(week(2020, 53), ("2020-12-28".into(), "2021-01-03".into()));
        let month = |year, month| {
            let (start, end) =
                period_of("plays_by_month", &[Cell::Int(year), Cell::Int(month)]).unwrap();
            (day_text(start), day_text(end))
        };
        assert_eq!(month(2018, 11), ("2018-11-01".into(), "2018-11-30".into()));
        assert_eq!(month(2020, 2), ("2020-02-01".into(), "2020-02-29".into()));
        assert_eq!(month(2018, 12), ("2018-12-01".into(), "2018-12-31".into()));
    }

    #[test]
    fn partial_first_and_last_periods_are_found_and_said() {
        let partial = weeks(5);
        assert_eq!(partial_ends(&partial), (true, true));
        let note = partial_note(&partial).unwrap();
        assert_eq!(
            note,
            "Lighter bars: partial weeks (the plays run from 2018-11-01 to 2018-11-28)."
        );
        assert!(note.contains("2018-11-01"), "{note}");
        let mut whole = weeks(5);
        let (start, _) = period_of("plays_by_week", &whole.result.rows[0]).unwrap();
        whole.result.rows[0][2] = Cell::Text(day_text(start));
        let last = whole.result.rows.len() - 1;
        let (_, end) = period_of("plays_by_week", &whole.result.rows[last]).unwrap();
        whole.result.rows[last][3] = Cell::Text(day_text(end));
        assert_eq!(partial_ends(&whole), (false, false));
        assert_eq!(partial_note(&whole), None);
        // Other answers have no periods.
        assert_eq!(
            partial_ends(&answer(
                "plays_by_hour",
                vec![vec![Cell::Int(0), Cell::Int(1)]]
            )),
            (false, false)
        );
    }

    #[test]
    fn one_bar_is_a_number_with_its_label() {
        let mut year = answer(
            "plays_by_year",
            vec![vec![Cell::Int(2018), Cell::Int(6820)]],
        );
        year.result.columns = vec!["year".into(), "plays".into()];
        assert_eq!(chart_of(&year), Chart::Number);
        assert_eq!(number_text(&year), "2018: 6,820 plays");
        assert_eq!(svg(&year).unwrap(), None);
        let count = answer("song_count", vec![vec![Cell::Int(14896)]]);
        assert_eq!(number_text(&count), "14,896");
        assert_eq!(chart_of(&weeks(2)), Chart::Columns);
    }

    /// The x positions and texts of the labels under the bars of an SVG chart.
    fn column_labels(svg: &str) -> Vec<(f64, String)> {
        svg.split("<text")
            .skip(1)
            .filter_map(|element| {
                let attribute = |name: &str| {
                    let start = element.find(&format!(" {name}=\"",))? + name.len() + 3;
                    let end = start + element[start..].find('"')?;
                    element[start..end].parse::<f64>().ok()
                };
                let text = element.split_once('>')?.1.split_once("</text>")?.0.trim();
                // The labels under the plot: below 260 px of the 344 px high chart.
                let (x, y) = (attribute("x")?, attribute("y")?);
                (y > 260.0 && text.contains("-W")).then(|| (x, text.to_string()))
            })
            .collect()
    }

    #[test]
    fn week_labels_never_overlap_and_the_svg_is_described() {
        for n in [5, 20, 58, 120] {
            let svg = svg(&weeks(n)).unwrap().unwrap();
            let labels = column_labels(&svg);
            assert!(!labels.is_empty(), "{n} weeks: no label drawn");
            assert_eq!(labels[0].1, "2018-W44", "the first bar is labelled");
            // "2018-W44" is 8 characters at 12 px: at most 64 px wide.
            for pair in labels.windows(2) {
                assert!(
                    pair[1].0 - pair[0].0 >= 64.0,
                    "{n} weeks: {:?} and {:?} overlap",
                    pair[0],
                    pair[1]
                );
            }
            assert!(svg
                .starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 640 344\""));
            assert!(svg.contains("style=\"max-width:100%;height:auto\""));
            assert!(svg.contains("<title id=\"plays_by_week-title\">Plays by ISO week</title>"));
            assert!(svg.contains(&format!("Vertical bars, {n} in order.")));
            assert!(svg.contains("partial weeks"));
            assert_eq!(svg.matches("<svg").count(), 1);
            // Every label at 12 px at least.
            for size in svg.split("font-size=\"").skip(1) {
                let size: f64 = size[..size.find('"').unwrap()].parse().unwrap();
                assert!(size >= 12.0, "a label of {size} px");
            }
        }
    }
}
