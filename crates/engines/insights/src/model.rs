//! The baseline of one key: its expected per-minute count for each hour of the week and
//! its overdispersion, trained once a day on the trailing 28 days of stored counts, and
//! the detection thresholds derived from them. See the crate README for the reasoning.

use crate::config::DetectorConfig;
use crate::store::MINUTES_PER_DAY;
use crate::tail::upper_threshold;

pub(crate) const SLOTS_PER_WEEK: usize = 168;
/// Days of minute counts the overdispersion is estimated on.
pub(crate) const DISPERSION_DAYS: u32 = 14;

/// Monday-based hour of the week of a minute (1970-01-01 was a Thursday).
pub(crate) fn hour_of_week(minute: u32) -> usize {
    let day = minute / MINUTES_PER_DAY;
    let weekday = (day + 3) % 7;
    (weekday * 24 + (minute % MINUTES_PER_DAY) / 60) as usize
}

#[derive(Debug, Clone)]
enum Profile {
    Flat(f32),
    Weekly(Box<[f32; SLOTS_PER_WEEK]>),
}

/// A trained baseline.
#[derive(Debug, Clone)]
pub(crate) struct KeyModel {
    profile: Profile,
    overdispersion: f32,
}

/// The counts a key's model is trained on.
pub(crate) struct TrainingData<'a> {
    /// The day the model is trained for (it uses days before it).
    pub(crate) today: u32,
    /// The first day of training data (`today - training_days`).
    pub(crate) window_start: u32,
    /// The day the key was first seen; only full days after it are history.
    pub(crate) first_day: u32,
    /// Hourly counts of the window: index `(day - window_start) * 24 + hour`.
    pub(crate) hourly: &'a [u64],
    /// Non-zero minute counts of the last [`DISPERSION_DAYS`] days, any order.
    pub(crate) minutes: &'a [(u32, u64)],
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

impl KeyModel {
    /// `None` when the key has no full day of history (the new-key rule applies).
    pub(crate) fn train(data: &TrainingData<'_>, config: &DetectorConfig) -> Option<Self> {
        let first_full_day = data.window_start.max(data.first_day + 1);
        if first_full_day >= data.today {
            return None;
        }
        let days: Vec<u32> = (first_full_day..data.today).collect();
        let hourly = |day: u32, hour: u32| -> f64 {
            let index = ((day - data.window_start) * 24 + hour) as usize;
            data.hourly.get(index).copied().unwrap_or(0) as f64
        };

        // Hourly estimates per hour of the week.
        let mut estimate = [0f64; SLOTS_PER_WEEK];
        if days.len() >= 14 {
            // Weekly shape: the median of the weeks' samples of each slot (a burst in one
            // week moves it little), raised to the smaller of the last two weeks' samples
            // so that growth over the window is followed without trusting one week alone.
            for (slot, value) in estimate.iter_mut().enumerate() {
                let samples: Vec<f64> = days
                    .iter()
                    .filter(|day| hour_of_week(**day * MINUTES_PER_DAY) / 24 == slot / 24)
                    .map(|day| hourly(*day, (slot % 24) as u32))
                    .collect();
                let mut sorted = samples.clone();
                sorted.sort_by(f64::total_cmp);
                let recent = match samples.as_slice() {
                    [.., a, b] => a.min(*b),
                    _ => 0.0,
                };
                *value = median(&sorted).max(recent);
            }
        } else {
            // Under two weeks of history: a daily shape from the upper quartile of the
            // days' samples of each hour (cautious: the weekly shape is unknown yet).
            for hour in 0..24u32 {
                let mut samples: Vec<f64> = days.iter().map(|day| hourly(*day, hour)).collect();
                samples.sort_by(f64::total_cmp);
                let rank = (samples.len() * 3).div_ceil(4).max(1) - 1;
                let value = samples[rank];
                for weekday in 0..7 {
                    estimate[weekday * 24 + hour as usize] = value;
                }
            }
        }

        // Per-minute rates, smoothed so that an hour next to a busier one is not judged
        // by its own average alone, floored at a tenth of the window's mean rate (the
        // rate of a rare key, whose hourly medians are all 0).
        let total: f64 = days
            .iter()
            .flat_map(|day| (0..24).map(move |hour| (*day, hour)))
            .map(|(day, hour)| hourly(day, hour))
            .sum();
        let floor = 0.1 * total / (days.len() as f64 * f64::from(MINUTES_PER_DAY));
        let mut rates = [0f64; SLOTS_PER_WEEK];
        for slot in 0..SLOTS_PER_WEEK {
            let before = estimate[(slot + SLOTS_PER_WEEK - 1) % SLOTS_PER_WEEK];
            let after = estimate[(slot + 1) % SLOTS_PER_WEEK];
            let here = estimate[slot];
            let smoothed = here.max((before + here) / 2.0).max((here + after) / 2.0);
            rates[slot] = (smoothed / 60.0).max(floor);
        }

        // Overdispersion: the method-of-moments estimate of the negative binomial's
        // E[(x-μ)² - x] / μ² per day, then the median over days (robust to burst days).
        let mut per_day: Vec<(f64, f64)> = Vec::new(); // (numerator, Σμ²) per day
        let dispersion_start = data
            .today
            .saturating_sub(DISPERSION_DAYS)
            .max(first_full_day);
        for day in dispersion_start..data.today {
            let all_mu_squared: f64 = (0..24u32)
                .map(|hour| {
                    let mu = rates[hour_of_week(day * MINUTES_PER_DAY + hour * 60)];
                    60.0 * mu * mu
                })
                .sum();
            per_day.push((all_mu_squared, all_mu_squared));
        }
        for (minute, count) in data.minutes {
            let day = minute / MINUTES_PER_DAY;
            if day < dispersion_start || day >= data.today {
                continue;
            }
            let mu = rates[hour_of_week(*minute)];
            let x = *count as f64;
            per_day[(day - dispersion_start) as usize].0 += (x - mu) * (x - mu) - x - mu * mu;
        }
        let mut estimates: Vec<f64> = per_day
            .iter()
            .filter(|(_, denominator)| *denominator > 0.0)
            .map(|(numerator, denominator)| numerator / denominator)
            .collect();
        estimates.sort_by(f64::total_cmp);
        let overdispersion = median(&estimates).clamp(0.0, config.max_overdispersion);

        let first = rates[0];
        let profile = if rates.iter().all(|rate| *rate == first) {
            Profile::Flat(first as f32)
        } else {
            Profile::Weekly(Box::new(rates.map(|rate| rate as f32)))
        };
        Some(Self {
            profile,
            overdispersion: overdispersion as f32,
        })
    }

    /// Expected count of a minute at hour-of-week `slot`.
    pub(crate) fn rate(&self, slot: usize) -> f64 {
        match &self.profile {
            Profile::Flat(rate) => f64::from(*rate),
            Profile::Weekly(rates) => f64::from(rates[slot]),
        }
    }

    pub(crate) fn overdispersion(&self) -> f64 {
        f64::from(self.overdispersion)
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        match self.profile {
            Profile::Flat(_) => 0,
            Profile::Weekly(_) => SLOTS_PER_WEEK * 4,
        }
    }

    /// A model with a constant rate.
    #[cfg(test)]
    pub(crate) fn constant(rate: f64, overdispersion: f64) -> Self {
        Self {
            profile: Profile::Flat(rate as f32),
            overdispersion: overdispersion as f32,
        }
    }
}

/// The counts a minute is judged against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Thresholds {
    /// One minute at or above this starts an insight.
    pub(crate) one_minute: u32,
    /// Two minutes summing to this or more start one.
    pub(crate) two_minutes: u32,
    /// During an insight, a minute under this is quiet.
    pub(crate) quiet_below: u32,
}

impl Thresholds {
    /// `level` multiplies the model's rate (the recent level, see the engine).
    pub(crate) fn for_model(
        model: Option<&KeyModel>,
        slot: usize,
        level: f64,
        config: &DetectorConfig,
    ) -> Self {
        let Some(model) = model else {
            return Self {
                one_minute: config.new_key_min_count,
                two_minutes: config.new_key_min_count * 2,
                quiet_below: (config.new_key_min_count / 2).max(1),
            };
        };
        let rate = model.rate(slot) * level;
        let a = model.overdispersion();
        let multiple =
            |factor: f64, mean: f64| (factor * mean).ceil().min(f64::from(u32::MAX)) as u32;
        Self {
            one_minute: config
                .min_count
                .max(multiple(config.min_multiple, rate))
                .max(upper_threshold(rate, a, config.start_tail)),
            two_minutes: config
                .min_count_two_minutes
                .max(multiple(config.min_multiple, 2.0 * rate))
                .max(upper_threshold(
                    2.0 * rate,
                    a / 2.0,
                    config.start_tail_two_minutes,
                )),
            quiet_below: multiple(config.end_multiple, rate)
                .max(upper_threshold(rate, a, config.end_tail))
                .max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: u32 = 20_000;

    fn train(hourly: &[u64], minutes: &[(u32, u64)], first_day: u32) -> Option<KeyModel> {
        KeyModel::train(
            &TrainingData {
                today: TODAY,
                window_start: TODAY - 28,
                first_day,
                hourly,
                minutes,
            },
            &DetectorConfig::default(),
        )
    }

    #[test]
    fn no_full_day_of_history_means_no_model() {
        assert!(train(&[0; 28 * 24], &[], TODAY - 1).is_none());
        assert!(train(&[0; 28 * 24], &[], TODAY - 2).is_some());
    }

    #[test]
    fn a_burst_in_one_week_does_not_raise_the_baseline() {
        let mut hourly = vec![60u64; 28 * 24]; // 1 call a minute
        let burst_day = 10u32;
        for hour in 0..24 {
            hourly[(burst_day * 24 + hour) as usize] = 60 * 50;
        }
        let model = train(&hourly, &[], 0).unwrap();
        let slot = hour_of_week((TODAY - 28 + burst_day) * MINUTES_PER_DAY + 5 * 60);
        assert!(
            (model.rate(slot) - 1.0).abs() < 0.01,
            "{}",
            model.rate(slot)
        );
    }

    #[test]
    fn the_weekly_shape_is_learnt() {
        let mut hourly = vec![0u64; 28 * 24];
        for day in 0..28u32 {
            let weekday = (TODAY - 28 + day + 3) % 7;
            for hour in 0..24 {
                hourly[(day * 24 + hour) as usize] = if weekday >= 5 { 60 } else { 600 };
            }
        }
        let model = train(&hourly, &[], 0).unwrap();
        // Wednesday noon vs Sunday 04:00.
        assert!((model.rate(2 * 24 + 12) - 10.0).abs() < 0.01);
        assert!((model.rate(6 * 24 + 4) - 1.0).abs() < 0.01);
    }

    #[test]
    fn overdispersed_minute_counts_are_measured() {
        let hourly = vec![600u64; 28 * 24];
        // Minutes alternate 0 and 20 (mean 10, variance 100): a = (100 - 10) / 100 = 0.9.
        let minutes: Vec<(u32, u64)> = ((TODAY - 14) * MINUTES_PER_DAY..TODAY * MINUTES_PER_DAY)
            .filter(|minute| minute % 2 == 0)
            .map(|minute| (minute, 20))
            .collect();
        let model = train(&hourly, &minutes, 0).unwrap();
        assert!(
            (model.overdispersion() - 0.9).abs() < 0.05,
            "{}",
            model.overdispersion()
        );
    }

    #[test]
    fn thresholds_follow_the_documented_send_command_example() {
        let config = DetectorConfig::default();
        let model = KeyModel::constant(0.0442, 0.0);
        let thresholds = Thresholds::for_model(Some(&model), 0, 1.0, &config);
        assert_eq!(thresholds.one_minute, 5);
        assert_eq!(thresholds.two_minutes, 6);
        assert_eq!(thresholds.quiet_below, 2);
    }
}
