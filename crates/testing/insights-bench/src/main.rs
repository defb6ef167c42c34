//! `opentrail-insights-bench`: the Insights engine's detection quality on synthetic
//! traffic with known anomalies (`quality`), the counters' per-event cost (`counters`)
//! and memory with many distinct keys (`memory`). See README.md.

mod costs;
mod generator;
mod quality;
mod sample;

use clap::{Parser, Subcommand};
use generator::{GeneratorConfig, Scenario};
use opentrail_insights::InsightsConfig;

#[derive(Parser)]
#[command(name = "opentrail-insights-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Precision, recall and latency of the engine and of a naive detector.
    Quality {
        /// The generator's seed (tuning used seed 1; report another).
        #[arg(long, default_value_t = 2)]
        seed: u64,
        #[arg(long, default_value_t = 28)]
        scored_days: u32,
        #[arg(long, default_value_t = 260)]
        anomalies: usize,
        /// The naive detector's multiple of the 7-day mean rate and minimum count.
        #[arg(long, default_value_t = 3.0)]
        naive_multiple: f64,
        #[arg(long, default_value_t = 10)]
        naive_min_count: u64,
        /// Print the scores as JSON (missed anomalies included).
        #[arg(long)]
        json: bool,
    },
    /// Cost of counting one event (parse excluded and, for comparison, alone).
    Counters {
        #[arg(long, default_value_t = 500_000)]
        events: usize,
        #[arg(long, default_value_t = 5_000)]
        keys: usize,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// Resident memory with many distinct (eventSource, eventName, errorCode) keys.
    Memory {
        #[arg(long, default_value_t = 100_000)]
        keys: usize,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Quality {
            seed,
            scored_days,
            anomalies,
            naive_multiple,
            naive_min_count,
            json,
        } => {
            let scenario = Scenario::generate(GeneratorConfig {
                seed,
                scored_days,
                scored_anomalies: anomalies,
                ..GeneratorConfig::default()
            });
            let config = InsightsConfig {
                source_id: "arn:aws:cloudtrail:us-east-1:111122223333:trail/bench".into(),
                close_delay_seconds: 0,
                ..InsightsConfig::default()
            };
            let mut naive = quality::NaiveDetector::new(naive_multiple, naive_min_count);
            let result = quality::run(&scenario, config, &mut naive)?;
            let engine = quality::score(&scenario, &result.engine);
            let naive = quality::score(&scenario, &result.naive);
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "seed": seed, "events": result.events, "seconds": result.seconds,
                        "series": scenario.apis.len() + scenario.apis.iter().map(|a| a.errors.len()).sum::<usize>(),
                        "engine": engine, "naive": naive,
                    }))?
                );
                return Ok(());
            }
            println!(
                "seed {seed}: {} APIs, {} anomalies scored over {scored_days} days after a {}-day warmup, {} events, {:.1} s",
                scenario.apis.len(),
                engine.anomalies,
                scenario.config.warmup_days,
                result.events,
                result.seconds
            );
            println!("{:<32} {:>12} {:>12}", "", "engine", "naive");
            let row = |name: &str, a: String, b: String| println!("{name:<32} {a:>12} {b:>12}");
            row(
                "precision",
                format!("{:.4}", engine.precision),
                format!("{:.4}", naive.precision),
            );
            row(
                "recall",
                format!("{:.4}", engine.recall),
                format!("{:.4}", naive.recall),
            );
            row(
                "insights (true/false)",
                format!("{}/{}", engine.true_insights, engine.false_insights),
                format!("{}/{}", naive.true_insights, naive.false_insights),
            );
            row(
                "start latency p50/p99/max min",
                format!(
                    "{}/{}/{}",
                    engine.start_latency_p50, engine.start_latency_p99, engine.start_latency_max
                ),
                format!(
                    "{}/{}/{}",
                    naive.start_latency_p50, naive.start_latency_p99, naive.start_latency_max
                ),
            );
            row(
                "end latency p50/p99/max min",
                format!(
                    "{}/{}/{}",
                    engine.end_latency_p50, engine.end_latency_p99, engine.end_latency_max
                ),
                format!(
                    "{}/{}/{}",
                    naive.end_latency_p50, naive.end_latency_p99, naive.end_latency_max
                ),
            );
            row(
                "fragmented anomalies",
                engine.fragmented.to_string(),
                naive.fragmented.to_string(),
            );
            println!(
                "false insights by series: engine {:?}, naive {:?}",
                engine.false_by_background, naive.false_by_background
            );
            for missed in engine.missed.iter().take(10) {
                println!("engine missed: {missed}");
            }
        }
        Command::Counters {
            events,
            keys,
            rounds,
        } => costs::counters(events, keys, rounds)?,
        Command::Memory { keys } => costs::memory(keys)?,
    }
    Ok(())
}
