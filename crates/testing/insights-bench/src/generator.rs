//! Synthetic API traffic with known ground truth: Poisson background per API with a daily
//! and a weekly shape, injected call-rate bursts and error spikes of varied size and
//! length, APIs that appear mid-run, slow ramps and overdispersed (noisy) APIs, which
//! must not fire. Everything is drawn from one seed.

use crate::sample::{log_uniform, negative_binomial, poisson, uniform};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub const MINUTES_PER_DAY: u32 = 1440;

/// What kind of background an API has.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Background {
    /// Poisson around the shaped rate.
    Steady,
    /// Negative binomial with shape `k` around the shaped rate.
    Noisy { k: f64 },
    /// The rate grows by `factor` linearly between the two minutes, then stays.
    Ramp { from: u32, to: u32, factor: f64 },
    /// No calls before `from`.
    New { from: u32 },
}

#[derive(Debug, Clone)]
pub struct ErrorSeries {
    pub code: String,
    /// Errors per minute at a shape of 1.
    pub rate: f64,
}

#[derive(Debug, Clone)]
pub struct Api {
    pub source: String,
    pub name: String,
    /// Write calls count for call-rate insights; read calls only for error-rate ones.
    pub write: bool,
    /// Successful calls per minute at a shape of 1.
    pub rate: f64,
    /// Daily shape: `1 + amplitude · cos(2π (hour − peak) / 24)`.
    pub daily_amplitude: f64,
    pub peak_hour: f64,
    /// Saturday and Sunday traffic relative to weekdays.
    pub weekend_factor: f64,
    pub background: Background,
    pub errors: Vec<ErrorSeries>,
}

/// Which series an anomaly is injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    CallRate { api: usize },
    ErrorRate { api: usize, error: usize },
}

#[derive(Debug, Clone, Copy)]
pub struct Anomaly {
    pub target: Target,
    /// First minute (relative to the scenario's start) and length in minutes.
    pub start: u32,
    pub minutes: u32,
    /// The series runs at `multiple ×` its background plus `extra` per minute.
    pub multiple: f64,
    pub extra: f64,
}

impl Anomaly {
    pub fn end(&self) -> u32 {
        self.start + self.minutes
    }
}

#[derive(Debug, Clone)]
pub struct GeneratorConfig {
    pub seed: u64,
    /// Days of history before the scored window (the baseline's training window).
    pub warmup_days: u32,
    /// Days scored.
    pub scored_days: u32,
    pub steady_write_apis: usize,
    pub noisy_apis: usize,
    pub ramp_apis: usize,
    pub new_apis: usize,
    pub read_apis: usize,
    /// Anomalies injected in the scored window ...
    pub scored_anomalies: usize,
    /// ... and in the training window (not scored; they test the baseline's robustness).
    pub warmup_anomalies: usize,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            warmup_days: 28,
            scored_days: 28,
            steady_write_apis: 60,
            noisy_apis: 12,
            ramp_apis: 12,
            new_apis: 12,
            read_apis: 40,
            scored_anomalies: 260,
            warmup_anomalies: 40,
        }
    }
}

pub struct Scenario {
    pub config: GeneratorConfig,
    pub apis: Vec<Api>,
    pub anomalies: Vec<Anomaly>,
}

const SOURCES: [&str; 8] = [
    "ec2.amazonaws.com",
    "iam.amazonaws.com",
    "s3.amazonaws.com",
    "ssm.amazonaws.com",
    "lambda.amazonaws.com",
    "kms.amazonaws.com",
    "sts.amazonaws.com",
    "rds.amazonaws.com",
];
const ERRORS: [&str; 5] = [
    "AccessDenied",
    "NoSuchEntityException",
    "ThrottlingException",
    "ValidationException",
    "ResourceNotFoundException",
];

impl Scenario {
    pub fn generate(config: GeneratorConfig) -> Self {
        let mut rng = StdRng::seed_from_u64(config.seed);
        let total_minutes = (config.warmup_days + config.scored_days) * MINUTES_PER_DAY;
        let scored_from = config.warmup_days * MINUTES_PER_DAY;
        let mut apis = Vec::new();
        let shaped =
            |rng: &mut StdRng, index: usize, write: bool, background: Background, rate: f64| {
                let errors = if write && rng.gen_bool(0.5) {
                    vec![ErrorSeries {
                        code: ERRORS[rng.gen_range(0..ERRORS.len())].to_string(),
                        rate: log_uniform(rng, 0.002, 0.5),
                    }]
                } else if write {
                    Vec::new()
                } else {
                    let count = rng.gen_range(1..=2);
                    (0..count)
                        .map(|offset| ErrorSeries {
                            code: ERRORS[(index + offset) % ERRORS.len()].to_string(),
                            rate: log_uniform(rng, 0.002, 2.0),
                        })
                        .collect()
                };
                Api {
                    source: SOURCES[index % SOURCES.len()].to_string(),
                    name: format!("{}Api{index}", if write { "Put" } else { "Get" }),
                    write,
                    rate,
                    daily_amplitude: uniform(rng, 0.0, 0.9),
                    peak_hour: uniform(rng, 0.0, 24.0),
                    weekend_factor: uniform(rng, 0.35, 1.0),
                    background,
                    errors,
                }
            };
        for _ in 0..config.steady_write_apis {
            let rate = log_uniform(&mut rng, 0.02, 40.0);
            let index = apis.len();
            apis.push(shaped(&mut rng, index, true, Background::Steady, rate));
        }
        for _ in 0..config.noisy_apis {
            let rate = log_uniform(&mut rng, 0.5, 40.0);
            let k = uniform(&mut rng, 1.5, 8.0);
            let index = apis.len();
            apis.push(shaped(&mut rng, index, true, Background::Noisy { k }, rate));
        }
        for _ in 0..config.ramp_apis {
            let rate = log_uniform(&mut rng, 0.1, 20.0);
            let days = rng.gen_range(3..=10);
            let from = rng.gen_range(scored_from..total_minutes - days * MINUTES_PER_DAY / 2);
            let background = Background::Ramp {
                from,
                to: from + days * MINUTES_PER_DAY,
                factor: uniform(&mut rng, 2.0, 4.0),
            };
            let index = apis.len();
            apis.push(shaped(&mut rng, index, true, background, rate));
        }
        for _ in 0..config.new_apis {
            let rate = log_uniform(&mut rng, 0.05, 10.0);
            let from = rng.gen_range(scored_from..total_minutes - MINUTES_PER_DAY);
            let index = apis.len();
            apis.push(shaped(
                &mut rng,
                index,
                true,
                Background::New { from },
                rate,
            ));
        }
        for _ in 0..config.read_apis {
            let rate = log_uniform(&mut rng, 0.1, 50.0);
            let index = apis.len();
            apis.push(shaped(&mut rng, index, false, Background::Steady, rate));
        }

        // Anomalies: call-rate bursts on steady and ramping write APIs, error spikes on
        // read APIs; at most one per series a day, so that each is a separate event.
        let burst_apis: Vec<usize> = (0..apis.len())
            .filter(|index| {
                apis[*index].write
                    && matches!(
                        apis[*index].background,
                        Background::Steady | Background::Ramp { .. }
                    )
            })
            .collect();
        let error_series: Vec<(usize, usize)> = (0..apis.len())
            .filter(|index| !apis[*index].write)
            .flat_map(|index| (0..apis[index].errors.len()).map(move |error| (index, error)))
            .collect();
        let mut anomalies: Vec<Anomaly> = Vec::new();
        let place = |rng: &mut StdRng, from: u32, to: u32, anomalies: &mut Vec<Anomaly>| loop {
            let target = if rng.gen_bool(0.6) {
                Target::CallRate {
                    api: burst_apis[rng.gen_range(0..burst_apis.len())],
                }
            } else {
                let (api, error) = error_series[rng.gen_range(0..error_series.len())];
                Target::ErrorRate { api, error }
            };
            let minutes = log_uniform(rng, 3.0, 240.0).round() as u32;
            let start = rng.gen_range(from..to - minutes - 30);
            let clash = anomalies.iter().any(|other| {
                other.target == target
                    && start < other.end() + MINUTES_PER_DAY
                    && other.start < start + minutes + MINUTES_PER_DAY
            });
            if clash {
                continue;
            }
            anomalies.push(Anomaly {
                target,
                start,
                minutes,
                multiple: log_uniform(rng, 3.0, 30.0),
                extra: log_uniform(rng, 6.0, 60.0),
            });
            return;
        };
        for _ in 0..config.warmup_anomalies {
            place(
                &mut rng,
                MINUTES_PER_DAY * 7,
                scored_from - MINUTES_PER_DAY,
                &mut anomalies,
            );
        }
        for _ in 0..config.scored_anomalies {
            place(&mut rng, scored_from + 60, total_minutes, &mut anomalies);
        }
        anomalies.sort_by_key(|anomaly| anomaly.start);
        Self {
            config,
            apis,
            anomalies,
        }
    }

    pub fn total_minutes(&self) -> u32 {
        (self.config.warmup_days + self.config.scored_days) * MINUTES_PER_DAY
    }

    pub fn scored_from(&self) -> u32 {
        self.config.warmup_days * MINUTES_PER_DAY
    }

    /// The background multiplier of an API at a minute (`epoch_minute` is absolute, for
    /// the weekday and hour; `minute` relative to the scenario).
    pub fn shape(&self, api: &Api, epoch_minute: u32, minute: u32) -> f64 {
        let hour = f64::from(epoch_minute % MINUTES_PER_DAY) / 60.0;
        let daily = 1.0
            + api.daily_amplitude
                * (2.0 * std::f64::consts::PI * (hour - api.peak_hour) / 24.0).cos();
        let weekday = (epoch_minute / MINUTES_PER_DAY + 3) % 7; // Monday 0
        let weekly = if weekday >= 5 {
            api.weekend_factor
        } else {
            1.0
        };
        let trend = match api.background {
            Background::Ramp { from, to, factor } => {
                if minute <= from {
                    1.0
                } else if minute >= to {
                    factor
                } else {
                    1.0 + (factor - 1.0) * f64::from(minute - from) / f64::from(to - from)
                }
            }
            Background::New { from } if minute < from => 0.0,
            _ => 1.0,
        };
        daily * weekly * trend
    }

    /// Draws a background count.
    pub fn draw(&self, rng: &mut StdRng, api: &Api, mean: f64) -> u64 {
        match api.background {
            Background::Noisy { k } => negative_binomial(rng, mean, k),
            _ => poisson(rng, mean),
        }
    }
}
