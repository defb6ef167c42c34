//! Query statistics from the executed plan's metrics.
//!
//! - EventsScanned: rows the Parquet scans read (after file, row-group and page pruning):
//!   the rows they produced and those their pushed-down filters dropped while decoding.
//! - EventsMatched: of those, rows that passed the query's filter on the store (what the
//!   scan produced, or the output of a filter right above it when one is left there).
//! - BytesScanned: bytes the Parquet scans read from storage (compressed column chunks and
//!   metadata).

use datafusion::physical_plan::ExecutionPlan;
use std::sync::Arc;

const SCAN: &str = "DataSourceExec";
const FILTER: &str = "FilterExec";
/// Operators that pass rows through unchanged between a filter and its scan.
const PASS_THROUGH: [&str; 3] = ["RepartitionExec", "CoalesceBatchesExec", "CooperativeExec"];

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ScanStats {
    pub(crate) events_scanned: u64,
    pub(crate) events_matched: u64,
    pub(crate) bytes_scanned: u64,
}

pub(crate) fn scan_stats(plan: &Arc<dyn ExecutionPlan>) -> ScanStats {
    let mut stats = ScanStats::default();
    visit(plan, &mut stats);
    stats
}

fn output_rows(plan: &Arc<dyn ExecutionPlan>) -> u64 {
    plan.metrics()
        .and_then(|metrics| metrics.output_rows())
        .unwrap_or(0) as u64
}

/// Whether `plan` is a scan, possibly under pass-through operators.
fn reaches_scan(plan: &Arc<dyn ExecutionPlan>) -> bool {
    if plan.name() == SCAN {
        return true;
    }
    let children = plan.children();
    PASS_THROUGH.contains(&plan.name()) && children.len() == 1 && reaches_scan(children[0])
}

fn visit(plan: &Arc<dyn ExecutionPlan>, stats: &mut ScanStats) {
    if plan.name() == SCAN {
        let rows = output_rows(plan);
        let sum = |name: &str| {
            plan.metrics()
                .and_then(|metrics| metrics.sum_by_name(name))
                .map_or(0, |value| value.as_usize()) as u64
        };
        stats.events_scanned += rows + sum("pushdown_rows_pruned");
        stats.events_matched += rows;
        stats.bytes_scanned += sum("bytes_scanned");
        return;
    }
    if plan.name() == FILTER {
        if let [child] = plan.children().as_slice() {
            if reaches_scan(child) {
                let before = stats.events_matched;
                visit(child, stats);
                // Replace the scan's rows by the filter's output.
                let scanned_here = stats.events_matched - before;
                stats.events_matched = before + output_rows(plan).min(scanned_here);
                return;
            }
        }
    }
    for child in plan.children() {
        visit(child, stats);
    }
}
