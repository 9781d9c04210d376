//! `analysis --html`: the report of every answer, through the real binary, and loaded in a real
//! browser (headless Chromium, Debian's `chromium`): every chart renders and the page is not
//! blank. Without Chromium the browser half skips with a notice, except under `CI=true`, where
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
        .stdout(predicates::str::contains(
            "wrote the report of 13 answer(s)",
        ));
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
    // 13 answers: the two counts as numbers, the other eleven as charts beside their tables.
    assert_eq!(html.matches("<svg").count(), 11);
    assert_eq!(html.matches("<table>").count(), 11);
    assert_eq!(html.matches("<section").count(), 13);
    assert!(html.contains("<p class=\"number\">150</p>"), "songs");
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
        11,
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
