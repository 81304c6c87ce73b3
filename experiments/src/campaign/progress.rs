//! The progress line of `onionlab run`: which stage a long experiment is in (starting a
//! testbed, crawling it, building circuits) and, where it counts steps, a bar filling up. It is
//! drawn on stderr and hidden when stderr is not a terminal (CI logs, tests), so output that
//! scripts read is unchanged; the experiments report to it and never print.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A running progress line (clears itself when dropped).
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A spinner labelled with the campaign's name.
    pub fn new(campaign: &str) -> Self {
        let bar = ProgressBar::new_spinner();
        bar.set_prefix(campaign.to_owned());
        Self::spinner_style(&bar);
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress { bar }
    }

    /// A progress line that draws nothing (library callers, tests).
    pub fn hidden() -> Self {
        Progress {
            bar: ProgressBar::hidden(),
        }
    }

    fn spinner_style(bar: &ProgressBar) {
        if let Ok(style) = ProgressStyle::with_template("{spinner} {prefix} [{elapsed_precise}] {msg}") {
            bar.set_style(style);
        }
    }

    /// A new stage without a count (back to the spinner).
    pub fn stage(&self, what: &str) {
        Self::spinner_style(&self.bar);
        self.bar.set_length(0);
        self.bar.set_position(0);
        self.bar.set_message(what.to_owned());
    }

    /// A new stage of `total` steps, shown as a bar.
    pub fn counted(&self, what: &str, total: u64) {
        if let Ok(style) = ProgressStyle::with_template("{prefix} [{elapsed_precise}] {msg} {wide_bar} {pos}/{len}") {
            self.bar.set_style(style);
        }
        self.bar.set_length(total);
        self.bar.set_position(0);
        self.bar.set_message(what.to_owned());
    }

    /// A counted stage at step `pos`, with a new message.
    pub fn at(&self, pos: u64, what: &str) {
        self.bar.set_position(pos);
        self.bar.set_message(what.to_owned());
    }

    /// One step of a counted stage done.
    pub fn step(&self) {
        self.bar.inc(1);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
