//! `onionlab-crawl run CAMPAIGN.yaml` and `onionlab-crawl summary DB`: a whole campaign with a
//! progress bar, Ctrl-C and `--resume`; a summary rebuilt from a store.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use onionlab_crawler::campaign::config::AnalysisKind;
use onionlab_crawler::campaign::run::summary_text;
use onionlab_crawler::campaign::{Campaign, CampaignRun, Plan, SummaryRequest, summarize};
use onionlab_crawler::store::{CrawlEnd, CrawlId, CrawlStatus, Store};

use super::progress::Progress;

/// Arguments of `run`.
#[derive(Args)]
pub(crate) struct RunArgs {
    /// The campaign file (YAML; its schema is in the README and in `campaign/config.rs`).
    campaign: PathBuf,
    /// Print the schedule and the first addresses the campaign would contact, then exit
    /// without sending anything.
    #[arg(long)]
    dry_run: bool,
}

/// Arguments of `summary`.
#[derive(Args)]
pub(crate) struct SummaryArgs {
    /// The store (a campaign's `crawl.sqlite`, or any --db file).
    db: PathBuf,
    /// The crawl to summarise (default: the newest).
    #[arg(long)]
    crawl: Option<CrawlId>,
    /// Analyses to run (repeatable; default: a campaign's own, or all).
    #[arg(long = "analysis", value_enum)]
    analyses: Vec<Analysis>,
    /// Attempts the crawl's engine made per probe, so that a failed visit counts as a departure
    /// only at the last (default: a campaign's own, or 2).
    #[arg(long)]
    attempts: Option<u32>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Analysis {
    /// Sessions and lifetimes (create-based method, Weibull fit).
    Sessions,
    /// Sybil signals over DHT identities.
    Sybil,
    /// Poisoning signals per peer source.
    Poisoning,
    /// DHT size estimate.
    Size,
}

impl From<Analysis> for AnalysisKind {
    fn from(a: Analysis) -> Self {
        match a {
            Analysis::Sessions => AnalysisKind::Sessions,
            Analysis::Sybil => AnalysisKind::Sybil,
            Analysis::Poisoning => AnalysisKind::Poisoning,
            Analysis::Size => AnalysisKind::Size,
        }
    }
}

/// Run the campaign (or, with `resume`, its newest unfinished run) until its time is up or
/// Ctrl-C; print where the results are.
pub(crate) async fn run(args: RunArgs, resume: bool) -> anyhow::Result<()> {
    let campaign = Campaign::load(&args.campaign)?;
    if args.dry_run {
        print!("{}", Plan::of(&campaign)?);
        return Ok(());
    }
    let run = CampaignRun::prepare(campaign.clone(), resume)?;
    let crawl = run.crawl().id;
    let progress = run.progress();
    eprintln!(
        "{} campaign {} as crawl {crawl} for {:?}; results in {}",
        if resume { "resuming" } else { "running" },
        campaign.name,
        progress.budget(),
        campaign.output.display()
    );
    let shown = progress.clone();
    let bar = Progress::timed("campaign", run.stats().clone(), progress.budget(), move || {
        let rounds: Vec<String> = shown.rounds().iter().map(|(p, n)| format!("{p} {n}")).collect();
        format!("rounds: {}", rounds.join(", "))
    });
    let stop = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let outcome = run.run(stop).await;
    bar.finish();
    let outcome = outcome?;
    println!("{}", summary_text(&campaign, &outcome.summary, outcome.end));
    println!("results: {}", outcome.output.display());
    for e in &outcome.exports {
        for t in &e.tables {
            println!("  {} ({} rows)", t.path.display(), t.rows);
        }
    }
    if outcome.end == CrawlEnd::Interrupted {
        println!(
            "interrupted; continue with: onionlab-crawl run {} --resume",
            args.campaign.display()
        );
    }
    Ok(())
}

fn end_of(status: CrawlStatus) -> CrawlEnd {
    match status {
        CrawlStatus::Finished => CrawlEnd::Finished,
        CrawlStatus::Running | CrawlStatus::Interrupted => CrawlEnd::Interrupted,
    }
}

/// Print the summary of a crawl of a store.
pub(crate) fn summary(args: SummaryArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.db.is_file(), "no store at {}", args.db.display());
    let store = Store::open(&args.db)?;
    let crawl = match args.crawl {
        Some(id) => id,
        None => store
            .newest_crawl()?
            .with_context(|| format!("{} holds no crawl", args.db.display()))?,
    };
    // A campaign's run keeps its campaign text: summarise it the way the run did.
    let record = store.crawl(crawl)?;
    let campaign = (record.kind.starts_with("campaign "))
        .then(|| Campaign::parse(&record.config, "the crawl's campaign").ok())
        .flatten();
    let analyses = match (&campaign, args.analyses.is_empty()) {
        (_, false) => args.analyses.into_iter().map(Into::into).collect(),
        (Some(c), true) => c.analyses.clone(),
        (None, true) => vec![
            AnalysisKind::Sessions,
            AnalysisKind::Size,
            AnalysisKind::Sybil,
            AnalysisKind::Poisoning,
        ],
    };
    let attempts = args
        .attempts
        .or(campaign.as_ref().map(|c| c.engine.to_config().attempts))
        .unwrap_or(2);
    let sybil = campaign.as_ref().map(|c| c.sybil.to_config()).unwrap_or_default();
    let summary = summarize(
        &store,
        crawl,
        &SummaryRequest {
            analyses,
            attempts,
            sybil,
        },
    )?;
    if summary.crawl.status == CrawlStatus::Running {
        eprintln!("note: crawl {crawl} is still running (or its process was killed)");
    }
    match &campaign {
        Some(c) => print!("{}", summary_text(c, &summary, end_of(summary.crawl.status))),
        None => print!("{summary}"),
    }
    Ok(())
}
