//! Progress bars for long work, on stderr. Hidden with `-q`, and drawn only when stderr is a
//! terminal (indicatif skips drawing otherwise), so scripts and logs stay clean.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Hands out bars that are all drawn together, or none at all when quiet.
#[derive(Clone)]
pub struct Progress {
    multi: Option<MultiProgress>,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        let multi = (!quiet).then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Progress { multi }
    }

    /// A hidden progress, for library callers and tests.
    pub fn hidden() -> Self {
        Progress { multi: None }
    }

    fn add(&self, bar: ProgressBar) -> ProgressBar {
        match &self.multi {
            Some(multi) => multi.add(bar),
            None => ProgressBar::hidden(),
        }
    }

    /// A bar over `total` bytes.
    pub fn bytes(&self, prefix: &str, total: u64) -> ProgressBar {
        self.bar(
            prefix,
            total,
            "{prefix:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
        )
    }

    /// A bar over `total` items.
    pub fn items(&self, prefix: &str, total: u64) -> ProgressBar {
        self.bar(
            prefix,
            total,
            "{prefix:>10} [{bar:30}] {human_pos}/{human_len} {msg}",
        )
    }

    fn bar(&self, prefix: &str, total: u64, template: &str) -> ProgressBar {
        let style = ProgressStyle::with_template(template)
            .expect("progress template is valid")
            .progress_chars("=> ");
        self.add(ProgressBar::new(total))
            .with_style(style)
            .with_prefix(prefix.to_string())
    }

    /// A spinner for a wait of unknown length, turning on its own (a steady tick).
    pub fn spinner(&self, prefix: &str) -> ProgressBar {
        let bar = self.counter(prefix);
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    }

    /// A count of things of unknown total (files found, records read), drawn as it moves. No
    /// steady tick: with one, `inc` does not draw and a count that finishes within a tick (15,000
    /// files found in a tenth of a second) is never seen above 0; without one, each `inc` draws,
    /// as often as the bars are drawn at all (indicatif limits that to 20 times a second).
    pub fn counter(&self, prefix: &str) -> ProgressBar {
        let style = ProgressStyle::with_template("{prefix:>10} {spinner} {human_pos} {msg}")
            .expect("progress template is valid");
        self.add(ProgressBar::new_spinner())
            .with_style(style)
            .with_prefix(prefix.to_string())
    }
}
