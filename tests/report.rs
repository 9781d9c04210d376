//! `analysis --html` and `--png`: the report of every answer, through the real binary, and
//! loaded in a real browser (headless Chromium, Debian's `chromium`): every chart renders and
//! the page is not blank; each PNG decodes and its pixels hold the bars the answer has, in the
//! answer's order, with its title and labels drawn. Without Chromium the browser half skips with a notice, except under `CI=true`, where
//! `.ci/run` installs it and the test requires it.

mod common;

use std::path::Path;
use std::process::Command;

use common::Workspace;

/// The bundled sample, loaded.
fn loaded() -> Workspace {
    let ws = Workspace::new(&common::repo().join("data"), "");
    ws.create_and_load();
    ws
}

fn report(ws: &Workspace) -> String {
    let path = ws.path().join("report.html");
    ws.cmd("analysis")
        .arg("--html")
        .arg(&path)
        .assert()
        .success()
        .stdout(predicates::str::contains("wrote the report of 13 answers"));
    std::fs::read_to_string(path).unwrap()
}

/// Chromium, when installed (`None` with a notice; under `CI=true` it is required).
fn chromium() -> Option<&'static str> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|name| Command::new(name).arg("--version").output().is_ok());
    if found.is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "no Chromium here, and CI=true requires it (.ci/run installs Debian's chromium)"
            );
        }
        eprintln!("NOTICE: skipping the browser half: no chromium (apt-get install chromium)");
    }
    found
}

fn headless(browser: &str, args: &[&str], page: &Path) -> std::process::Output {
    Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1300,2400",
        ])
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap()
}

#[test]
fn the_report_charts_every_volume_and_ranking_and_fetches_nothing() {
    let ws = loaded();
    let html = report(&ws);
    // 13 answers: the two counts as numbers, and the sample's thirty days of November 2018 make
    // one bar of plays_by_year and one of plays_by_month, said as numbers too; the other nine
    // are charts beside their tables.
    assert_eq!(html.matches("<svg").count(), 9);
    assert_eq!(html.matches("<table>").count(), 9);
    assert_eq!(html.matches("<section").count(), 13);
    assert!(html.contains("<p class=\"number\">150</p>"), "songs");
    assert!(
        html.contains("<p class=\"number\">2018: 1,602 plays</p>"),
        "one year of plays, as a number"
    );
    assert!(html.contains("<p class=\"number\">2018-11: 1,602 plays</p>"));
    // The weeks: 2018-W44 begins on Monday 29 October, the plays on Thursday 1 November; the
    // last week ends on Sunday 2 December, the plays on 30 November.
    assert!(
        html.contains(
            "<p class=\"note\">Lighter bars: partial weeks (the plays run from 2018-11-01 to \
             2018-11-30).</p>"
        ),
        "the partial weeks are said"
    );
    // Each chart scales to the page and is described for screen readers.
    assert_eq!(
        html.matches("style=\"max-width:100%;height:auto\"").count(),
        9
    );
    assert_eq!(html.matches("<desc id=").count(), 9);
    assert!(html.contains("from duckdb "), "which warehouse");
    for fetch in ["<script", "<link", "src=", "url(", "@import", "https://"] {
        assert!(!html.contains(fetch), "the page would fetch: {fetch}");
    }

    let Some(browser) = chromium() else { return };
    let page = ws.path().join("report.html");
    let dom = headless(browser, &["--dump-dom"], &page);
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert_eq!(
        dom.matches("<svg").count(),
        9,
        "the browser's DOM holds every chart"
    );
    assert!(dom.matches("<rect").count() > 100, "bars drawn");
    // A screenshot of the report against one of a blank page of the same size.
    let blank = ws.path().join("blank.html");
    std::fs::write(&blank, "<!DOCTYPE html><html><body></body></html>").unwrap();
    let shot = |page: &Path, name: &str| {
        let png = ws.path().join(name);
        headless(browser, &[&format!("--screenshot={}", png.display())], page);
        std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0)
    };
    let (report_png, blank_png) = (shot(&page, "report.png"), shot(&blank, "blank.png"));
    assert!(blank_png > 0, "no screenshot was written");
    assert!(
        report_png > 5 * blank_png,
        "the report's screenshot ({report_png} bytes) is as plain as a blank page's ({blank_png})"
    );
}

#[test]
fn an_empty_warehouse_reports_no_plays_yet_instead_of_broken_charts() {
    let ws = Workspace::new(&common::repo().join("data"), "");
    ws.cmd("create_tables").assert().success();
    let html = report(&ws);
    assert!(!html.contains("<svg"), "no chart of nothing");
    assert_eq!(html.matches("No plays yet").count(), 11);
    assert!(html.contains("<p class=\"number\">0</p>"));
    if let Some(browser) = chromium() {
        let dom = headless(browser, &["--dump-dom"], &ws.path().join("report.html"));
        assert!(String::from_utf8_lossy(&dom.stdout).contains("No plays yet"));
    }
}

/// A decoded PNG, 8-bit RGB.
struct Picture {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Picture {
    fn open(path: &Path) -> Picture {
        let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
        let mut reader = decoder.read_info().unwrap();
        let mut rgb = vec![0; reader.output_buffer_size()];
        let frame = reader.next_frame(&mut rgb).unwrap();
        assert_eq!(
            (frame.color_type, frame.bit_depth),
            (png::ColorType::Rgb, png::BitDepth::Eight),
            "{}",
            path.display()
        );
        rgb.truncate(frame.buffer_size());
        Picture {
            width: frame.width as usize,
            height: frame.height as usize,
            rgb,
        }
    }

    fn at(&self, x: usize, y: usize) -> [u8; 3] {
        let i = 3 * (y * self.width + x);
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// Pixels of the bars' colour in each of `lines` (rows when `across`, else columns).
    fn bar_pixels(&self, across: bool) -> Vec<usize> {
        self.pixels_of(BAR, across)
    }

    /// Per line (across: rows, else columns), the pixels of `colour`.
    fn pixels_of(&self, colour: [u8; 3], across: bool) -> Vec<usize> {
        let (lines, along) = if across {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        };
        (0..lines)
            .map(|line| {
                (0..along)
                    .filter(|&i| {
                        let (x, y) = if across { (i, line) } else { (line, i) };
                        self.at(x, y) == colour
                    })
                    .count()
            })
            .collect()
    }

    /// Dark pixels (text, axes) inside the rectangle.
    fn ink(&self, xs: std::ops::Range<usize>, ys: std::ops::Range<usize>) -> usize {
        ys.flat_map(|y| xs.clone().map(move |x| (x, y)))
            .filter(|&(x, y)| self.at(x, y).iter().all(|&c| c < 100))
            .count()
    }
}

/// The bars' colour (a filled rectangle is drawn without anti-aliasing).
const BAR: [u8; 3] = [0x2b, 0x6c, 0xb0];
/// The lighter colour of a bar that counts part of a period.
const PARTIAL: [u8; 3] = [0x9d, 0xc0, 0xe6];

/// The bars in a picture: runs of lines holding bar pixels, each as its largest extent.
fn bars(lines: &[usize]) -> Vec<usize> {
    let mut bars = Vec::new();
    let mut current = 0;
    for &n in lines.iter().chain([&0]) {
        if n > 0 {
            current = current.max(n);
        } else if current > 0 {
            bars.push(current);
            current = 0;
        }
    }
    bars
}

/// Every answer that can be a chart (the counts never are); on an empty warehouse each says
/// "no plays yet".
const CHARTED: [&str; 11] = [
    "both_levels",
    "users_by_level",
    "top_users",
    "plays_by_year",
    "plays_by_day",
    "plays_by_week",
    "plays_by_month",
    "plays_by_hour",
    "plays_by_weekday",
    "top_artists",
    "top_songs",
];

/// The charts of the loaded sample: a volume of one bar (plays_by_year, plays_by_month on its
/// one month) is a number, with no picture.
fn charted_when_loaded() -> Vec<&'static str> {
    CHARTED
        .into_iter()
        .filter(|name| !["plays_by_year", "plays_by_month"].contains(name))
        .collect()
}

fn pngs(ws: &Workspace, dir: &Path, count: usize) -> Vec<String> {
    ws.cmd("analysis")
        .arg("--png")
        .arg(dir)
        .assert()
        .success()
        .stdout(format!("wrote {count} charts to {}\n", dir.display()));
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn each_chart_is_a_png_with_the_answers_bars_in_order_title_and_labels() {
    let ws = loaded();
    let dir = ws.path().join("slides").join("charts");
    let charted = charted_when_loaded();
    let mut expected: Vec<String> = charted.iter().map(|n| format!("{n}.png")).collect();
    expected.sort();
    assert_eq!(
        pngs(&ws, &dir, charted.len()),
        expected,
        "one PNG per chart, nothing else"
    );

    // Made to be shared: the permissions of any new file here, not a temporary file's 0600.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode();
        std::fs::write(dir.join("..").join("plain"), "").unwrap();
        assert_eq!(
            mode(&dir.join("plays_by_hour.png")),
            mode(&dir.join("..").join("plain"))
        );
    }

    let json = ws
        .cmd("analysis")
        .args(["--format", "json"])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    for answer in doc["answers"].as_array().unwrap() {
        let name = answer["name"].as_str().unwrap();
        if !charted.contains(&name) {
            continue;
        }
        let rows = answer["rows"].as_array().unwrap();
        let last = answer["columns"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .as_str()
            .unwrap();
        let values: Vec<u64> = rows.iter().map(|row| row[last].as_u64().unwrap()).collect();
        let picture = Picture::open(&dir.join(format!("{name}.png")));
        assert_eq!(picture.width, 1280, "{name}: twice the page's width");
        assert!(
            picture.ink(0..picture.width, 0..40) > 200,
            "{name}: no title drawn"
        );
        let ranking = name.starts_with("top_") || name == "both_levels";
        // A ranking's bars are horizontal, the first on top; the volumes' are columns in order.
        let drawn = bars(&picture.bar_pixels(ranking));
        // A first or last period the plays cover in part is drawn lighter: on the sample, the
        // first and the last ISO week (plays from Thursday 1 to Friday 30 November).
        let lighter = bars(&picture.pixels_of(PARTIAL, ranking));
        if name == "plays_by_week" {
            assert_eq!(
                lighter.len(),
                2,
                "{name}: the two partial weeks drawn lighter"
            );
            assert_eq!(drawn.len() + lighter.len(), values.len(), "{name}");
            let mut all = vec![lighter[0]];
            all.extend(&drawn);
            all.push(lighter[1]);
            assert_eq!(all.len(), values.len());
            // W44 (214 plays) is lower than W45 (382): the bars keep the values' order.
            assert!(all[0] < all[1], "{name}: {all:?}");
            continue;
        }
        assert!(lighter.is_empty(), "{name}: no period is partial");
        let nonzero: Vec<u64> = values.iter().copied().filter(|&v| v > 0).collect();
        assert_eq!(
            drawn.len(),
            nonzero.len(),
            "{name}: one bar per row with plays"
        );
        // Longer bar for more plays: the bars' lengths are ordered as the values are.
        for (i, j) in (0..nonzero.len()).flat_map(|i| (0..nonzero.len()).map(move |j| (i, j))) {
            if nonzero[i] > nonzero[j] {
                assert!(
                    drawn[i] > drawn[j],
                    "{name}: bar {i} ({}) not longer than bar {j}",
                    nonzero[i]
                );
            }
        }
        // The labels: text left of a ranking's bars, below the columns.
        let labels = if ranking {
            picture.ink(0..400, 40..picture.height)
        } else {
            // Just below the axis, the bars' bottom.
            let axis = (0..picture.height)
                .rev()
                .find(|&y| (0..picture.width).any(|x| picture.at(x, y) == BAR))
                .unwrap();
            picture.ink(0..picture.width, axis + 4..(axis + 60).min(picture.height))
        };
        // A label of one or two characters takes about 50 dark pixels at this size.
        let least = 40 * values.len().min(5);
        assert!(
            labels >= least,
            "{name}: labels not drawn ({labels} dark pixels, {least} expected)"
        );
    }
}

#[test]
fn an_empty_warehouse_draws_no_plays_yet_and_a_bad_directory_is_one_clear_error() {
    let ws = Workspace::new(&common::repo().join("data"), "");
    ws.cmd("create_tables").assert().success();
    let dir = ws.path().join("charts");
    assert_eq!(pngs(&ws, &dir, 11).len(), 11);
    for name in CHARTED {
        let picture = Picture::open(&dir.join(format!("{name}.png")));
        assert_eq!(
            bars(&picture.bar_pixels(false)).len(),
            0,
            "{name}: a bar of nothing"
        );
        // The notice, in the amber of the page's: red well above blue.
        let amber = (0..picture.height)
            .flat_map(|y| (0..picture.width).map(move |x| (x, y)))
            .filter(|&(x, y)| {
                let [r, g, b] = picture.at(x, y);
                r > 100 && r > g && g > b && r - b > 60
            })
            .count();
        assert!(
            amber > 300,
            "{name}: 'no plays yet' not drawn ({amber} pixels)"
        );
    }

    let file = ws.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    ws.cmd("analysis")
        .arg("--png")
        .arg(file.join("charts"))
        .assert()
        .code(1)
        .stderr(predicates::str::contains("cannot create"))
        .stderr(predicates::str::contains("for the charts"));
}

/// `--html` into a directory that does not exist yet creates it, as `--png` does; a report that
/// cannot be written says where and why, never naming the temporary file.
#[test]
fn the_report_goes_into_a_new_directory_and_a_failure_names_no_temporary_file() {
    let ws = loaded();
    let path = ws.path().join("reports/2018/november.html");
    ws.cmd("analysis")
        .arg("--html")
        .arg(&path)
        .assert()
        .success();
    assert!(std::fs::read_to_string(&path).unwrap().contains("<svg"));
    // A file where the directory should be.
    std::fs::write(ws.path().join("blocked"), "").unwrap();
    let out = ws
        .cmd("analysis")
        .arg("--html")
        .arg(ws.path().join("blocked/report.html"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot write the report to"), "{stderr}");
    assert!(!stderr.contains(".sparkify-"), "{stderr}");
}

/// 400 days of plays from 1 November 2018: November 2018 and November 2019 are two
/// months, not one; the first and last ISO weeks and the last month are partial and said so;
/// the year 2019 is charted (two bars, the first and second partial years).
#[test]
fn months_are_counted_by_year_and_partial_periods_are_marked() {
    let sources = tempfile::tempdir().unwrap();
    sparkify::gen_data::generate(&sparkify::gen_data::GenOptions {
        songs: 30,
        events: 4000,
        days: 400,
        seed: 7,
        out: sources.path().to_path_buf(),
        force: true,
    })
    .unwrap();
    let ws = Workspace::new(sources.path(), "");
    ws.create_and_load();
    let out = ws
        .cmd("analysis")
        .args([
            "--format",
            "json",
            "--query",
            "plays_by_month",
            "--query",
            "plays_by_year",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let months = &doc["answers"][0]["rows"];
    let keys: Vec<(i64, i64)> = months
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["year"].as_i64().unwrap(),
                row["month"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        keys.len(),
        14,
        "Nov 2018 to Nov 2019 and a few days of Dec: {keys:?}"
    );
    assert_eq!(keys[0], (2018, 11));
    assert_eq!(keys[12], (2019, 11), "November 2019 on its own");
    assert_eq!(months[0]["first_day"], "2018-11-01");
    // 400 days from 2018-11-01: the last is 2019-12-05 (its plays may end a day earlier).
    let last = months[13]["last_day"].as_str().unwrap();
    assert!(last.starts_with("2019-12-0"), "{last}");
    let years = &doc["answers"][1]["rows"];
    assert_eq!(years.as_array().unwrap().len(), 2);

    let html = report(&ws);
    assert!(
        html.contains(&format!(
            "<p class=\"note\">Lighter bars: partial years (the plays run from 2018-11-01 to {last}).</p>"
        )),
        "years"
    );
    assert!(
        html.contains(&format!(
            "<p class=\"note\">Lighter bar: a partial month (the plays end on {last}).</p>"
        )),
        "months: November 2018 is whole, the last December is not"
    );
    assert!(html.contains("Lighter bars: partial weeks"), "weeks");
}
