//! `cargo xtask bench`: measurements printed, never asserted.
//!
//! `clusters`: wall time until control-plane-only clusters are ready (API server
//! `/readyz` and the controller manager's `default` ServiceAccount), for 1 and for 3
//! clusters started in parallel in one run, and their ratio (goal: 3 clusters in at
//! most 1.5 times the time of 1). Assets and image are prepared first, untimed.

use std::time::Duration;

use ecp_harness::cluster::{ApiserverOptions, ApiserverRun};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
enum What {
    /// Time to ready for 1 and for 3 clusters, and the ratio.
    Clusters {
        /// Rounds of (1 cluster, 3 clusters); medians are reported.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let What::Clusters { rounds } = args.what;
    let rounds = rounds.max(1);
    crate::runtime()?.block_on(async {
        crate::test::prepare_clusters().await?;
        let mut one = Vec::new();
        let mut three = Vec::new();
        for round in 1..=rounds {
            let t1 = time_to_ready(1).await?;
            let t3 = time_to_ready(3).await?;
            println!("round {round}: 1 cluster {t1:.2?}, 3 clusters {t3:.2?}");
            one.push(t1);
            three.push(t3);
        }
        let (m1, m3) = (median(&mut one), median(&mut three));
        let ratio = m3.as_secs_f64() / m1.as_secs_f64();
        println!("clusters: time to ready (median of {rounds})");
        println!("  1 cluster:  {m1:.2?}");
        println!("  3 clusters: {m3:.2?}");
        println!(
            "  ratio:      {ratio:.2} (goal <= 1.50: {})",
            if ratio <= 1.5 { "met" } else { "NOT met" }
        );
        anyhow::Ok(())
    })
}

/// Starts `n` clusters in one run, returns the wall time until all were ready, and
/// removes them.
async fn time_to_ready(n: usize) -> anyhow::Result<Duration> {
    let run = ApiserverRun::start(ApiserverOptions::numbered(n)).await?;
    let t = run.ready_after();
    for c in run.clusters() {
        tracing::info!(cluster = %c.name, ready_after = ?c.ready_after);
    }
    run.down().await?;
    Ok(t)
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}
