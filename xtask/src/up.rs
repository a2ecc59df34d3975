//! `cargo xtask up`: start test clusters for manual use and leave them running.
//! Prints the run id and each cluster's kubeconfig paths; `cargo xtask down` removes
//! them (by their run-id label; without `--run-id`, every run started from this
//! checkout), `cargo xtask status` lists them.

use std::time::Duration;

use ecp_harness::cluster::{ApiserverOptions, ApiserverRun, RunId, cache_dir};

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Provider {
    /// Control-plane-only clusters (etcd, kube-apiserver, kube-controller-manager).
    Apiserver,
}

#[derive(clap::Args)]
pub struct Args {
    /// Which kind of cluster to start.
    #[arg(long, value_enum, default_value = "apiserver")]
    provider: Provider,
    /// How many clusters (named c1, c2, ...).
    #[arg(long, default_value_t = 1, conflicts_with = "names")]
    clusters: usize,
    /// Cluster names instead of c1..cN, comma-separated (e.g. external,config).
    #[arg(long, value_delimiter = ',')]
    names: Vec<String>,
    /// Seconds each cluster may take to become ready.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let Provider::Apiserver = args.provider;
    let rt = crate::runtime()?;
    rt.block_on(async {
        crate::test::prepare_clusters().await?;
        let mut opts = if args.names.is_empty() {
            ApiserverOptions::numbered(args.clusters)
        } else {
            ApiserverOptions::named(args.names)
        };
        opts.ready_timeout = Duration::from_secs(args.timeout);
        opts.state_dir = Some(runs_dir());
        let run_id = RunId::new();
        // Recorded before anything exists, so `cargo xtask down` finds even a failed start.
        crate::runs::record(&run_id, "up")?;
        opts.run_id = Some(run_id.clone());
        println!("==> starting {} cluster(s)", opts.names.len());
        // A failed start has removed what it created.
        let run = ApiserverRun::start(opts).await.inspect_err(|_| crate::runs::forget(&run_id))?;
        let run_id = run.run_id().clone();
        println!(
            "run {run_id} on internal network {} ready in {:.1?}",
            run.network(),
            run.ready_after()
        );
        for c in run.clusters() {
            println!("  {} at https://{}", c.name, c.address);
            println!("    host kubeconfig: {}", c.host_kubeconfig.display());
            println!("    peer kubeconfig: {}", c.peer_kubeconfig.display());
        }
        let first = run.clusters()[0].host_kubeconfig.clone();
        let dir = run.keep()?;
        println!("run record: {}", dir.join("run.json").display());
        println!("try: KUBECONFIG={} kubectl get namespaces", first.display());
        println!("remove with: cargo xtask down --run-id {run_id}");
        Ok(())
    })
}

/// Where `up` keeps each run's kubeconfigs: `<cache>/runs/<run id>/`.
pub(crate) fn runs_dir() -> std::path::PathBuf {
    cache_dir().join("runs")
}
