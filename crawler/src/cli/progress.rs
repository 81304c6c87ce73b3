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
        bar.set_prefix(label.to_owned());
        let shown = bar.clone();
        let ticker = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tick.tick().await;
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
