//! A progress line for long probes and crawls: the engine's running totals, redrawn a few times a
//! second on stderr. indicatif hides it when stderr is not a terminal (logs, CI), so scripts see
//! only the final report.

use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use onionlab_crawler::engine::EngineStats;

/// A running progress line; [`Progress::finish`] clears it.
pub(crate) struct Progress {
    bar: ProgressBar,
    ticker: tokio::task::JoinHandle<()>,
}

impl Progress {
    /// Show `label` and the totals of `stats`, plus whatever `extra` says (e.g. nodes found).
    pub(crate) fn start(label: &str, stats: Arc<EngineStats>, extra: impl Fn() -> String + Send + 'static) -> Progress {
        let bar = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {prefix} [{elapsed_precise}] {msg}") {
            bar.set_style(style);
        }
        Self::run(bar, label, stats, extra)
    }

    /// Like [`Progress::start`], with a bar filling up over `total` (a run with a set duration).
    pub(crate) fn timed(
        label: &str,
        stats: Arc<EngineStats>,
        total: Duration,
        extra: impl Fn() -> String + Send + 'static,
    ) -> Progress {
        let bar = ProgressBar::new(total.as_secs().max(1));
        if let Ok(style) =
            ProgressStyle::with_template("{prefix} [{elapsed_precise}/{duration_precise}] {wide_bar} {msg}")
        {
            bar.set_style(style);
        }
        Self::run(bar, label, stats, extra)
    }

    fn run(
        bar: ProgressBar,
        label: &str,
        stats: Arc<EngineStats>,
        extra: impl Fn() -> String + Send + 'static,
    ) -> Progress {
        bar.set_prefix(label.to_owned());
        let shown = bar.clone();
        let started = tokio::time::Instant::now();
        let ticker = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tick.tick().await;
                shown.set_position(started.elapsed().as_secs());
                let more = extra();
                shown.set_message(format!(
                    "{} queries, {} answered, {} failed, {} in flight{}{more}",
                    stats.attempts(),
                    stats.ok(),
                    stats.failed(),
                    stats.in_flight(),
                    if more.is_empty() { "" } else { ", " },
                ));
                shown.tick();
            }
        });
        Progress { bar, ticker }
    }

    /// Stop and erase the line.
    pub(crate) fn finish(self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}
