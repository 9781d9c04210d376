//! How the IaC steps say what they did: a [`Change`] per step, printed as it ends, and the
//! state of a wait on a spinner.

use std::time::Duration;

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
    Unchanged,
    Deleted,
    AlreadyGone,
    Kept,
    /// Made by someone else, now tagged as iac_create's (`--adopt`).
    Adopted,
}

impl Change {
    pub fn word(self) -> &'static str {
        match self {
            Change::Created => "created",
            Change::Updated => "updated",
            Change::Unchanged => "already there, unchanged",
            Change::Deleted => "deleted",
            Change::AlreadyGone => "already gone",
            Change::Kept => "kept",
            Change::Adopted => "adopted (tagged as iac_create's)",
        }
    }
}

/// One step's outcome, as printed.
#[derive(Debug, Clone)]
pub struct Step {
    pub what: String,
    pub change: Change,
    pub took: Duration,
}

impl Step {
    /// The step `what`, started at `clock` and ended now with `change`.
    pub fn since(what: String, change: Change, clock: std::time::Instant) -> Step {
        Step {
            what,
            change,
            took: clock.elapsed(),
        }
    }
}

/// Reports each step as it finishes and shows what is being waited for.
pub trait Reporter {
    fn step(&self, step: &Step);
    /// The current state of a wait (e.g. `workgroup CREATING`), called at every poll.
    fn waiting(&self, _state: &str, _elapsed: Duration) {}
}

/// A reporter that only collects, for tests and `-q`.
#[derive(Debug, Default)]
pub struct Collect(pub std::sync::Mutex<Vec<Step>>);

impl Reporter for Collect {
    fn step(&self, step: &Step) {
        self.0.lock().unwrap().push(step.clone());
    }
}

/// Prints each step on stdout as it ends, and the state of a wait on a spinner (stderr).
pub struct ConsoleReporter {
    spinner: indicatif::ProgressBar,
}

impl ConsoleReporter {
    pub fn new(progress: &crate::progress::Progress) -> Self {
        let spinner = progress.spinner("aws");
        spinner.set_message("");
        ConsoleReporter { spinner }
    }

    pub fn finish(&self) {
        self.spinner.finish_and_clear();
    }
}

impl Reporter for ConsoleReporter {
    fn step(&self, step: &Step) {
        self.spinner.suspend(|| {
            // A closed output does not stop the work; the binary's last line says so.
            let _ = crate::cli::println(&format!(
                "{}: {} ({:.1} s)",
                step.what,
                step.change.word(),
                step.took.as_secs_f64()
            ));
        });
    }

    fn waiting(&self, state: &str, elapsed: Duration) {
        self.spinner
            .set_message(format!("{state} ({} s)", elapsed.as_secs()));
        tracing::info!("{state} after {} s", elapsed.as_secs());
    }
}

/// Prints a dry run: what the binary would do in `region`, step by step, then the problems a
/// real run would meet and `nothing_done`; fails (exit 1) when there are problems, so that a
/// script can trust a dry run that passes.
pub fn print_dry_run(
    what: &str,
    region: Option<&str>,
    steps: &[String],
    problems: &[String],
    nothing_done: &str,
) -> anyhow::Result<()> {
    let region = region.unwrap_or("(no region)");
    crate::cli::println(&format!("{what} would, in region {region}:"))?;
    for (index, step) in steps.iter().enumerate() {
        crate::cli::println(&format!("  {}. {step}", index + 1))?;
    }
    if !problems.is_empty() {
        crate::cli::println(&format!(
            "Before a real run, fix:\n  - {}",
            problems.join("\n  - ")
        ))?;
    }
    crate::cli::println(nothing_done)?;
    if !problems.is_empty() {
        anyhow::bail!(
            "{} to fix before a real run (listed above)",
            crate::words::counted(problems.len(), "problem", "problems")
        );
    }
    Ok(())
}
