//! The scheduled dashboard refreshes: every `check` interval, refreshes the dashboards
//! whose ENABLED schedule is due (their next run time lives in the metadata store, so a
//! restart neither loses nor repeats one).

use opentrail_dashboards::DashboardService;
use std::sync::Arc;
use std::time::Duration;

pub async fn run(
    dashboards: Arc<DashboardService>,
    check: Duration,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(check.max(Duration::from_secs(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stopped.changed() => return,
        }
        if *stopped.borrow() {
            return;
        }
        if let Err(e) = dashboards.refresh_due().await {
            tracing::warn!(error = %e, "failed to run the due dashboard refreshes");
        }
    }
}
