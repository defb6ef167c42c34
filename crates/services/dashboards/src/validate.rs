//! Checks of dashboard input beyond the model's types (lengths, patterns, the widget and
//! schedule rules), and the schedule's arithmetic.

use crate::record::WidgetRecord;
use crate::DashboardError;
use chrono::{DateTime, Duration, NaiveTime, Utc};
use opentrail_operations::{
    RefreshSchedule, RefreshScheduleFrequencyUnit, RefreshScheduleStatus, RequestWidget,
};

/// The most widgets a custom dashboard holds (AWS: 10).
pub const MAX_WIDGETS: usize = 10;
/// QueryStatement's longest (the model's limit).
const MAX_STATEMENT_CHARS: usize = 10_000;
/// QueryParameters per widget (the model's limit).
const MAX_QUERY_PARAMETERS: usize = 10;

fn invalid(message: String) -> DashboardError {
    DashboardError::Validation(message)
}

/// `DashboardName`: 3–128 characters of `[a-zA-Z0-9_-]`.
pub fn name(value: &str, member: &str) -> Result<(), DashboardError> {
    let length = value.chars().count();
    if !(3..=128).contains(&length) {
        return Err(invalid(format!(
            "{member} must be 3 to 128 characters long, got {length}: {value}"
        )));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(invalid(format!(
            "{member} {value} may contain only letters, digits, hyphens and underscores"
        )));
    }
    Ok(())
}

fn view_key(value: &str) -> bool {
    (3..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn view_value(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._- ".contains(&b))
}

/// A request's widgets as stored: checked, aliased by position.
pub fn widgets(given: &[RequestWidget]) -> Result<Vec<WidgetRecord>, DashboardError> {
    if given.len() > MAX_WIDGETS {
        return Err(DashboardError::ServiceQuotaExceeded(format!(
            "A custom dashboard can have at most {MAX_WIDGETS} widgets, got {}",
            given.len()
        )));
    }
    given
        .iter()
        .enumerate()
        .map(|(index, widget)| {
            let position = index + 1;
            let length = widget.query_statement.chars().count();
            if !(1..=MAX_STATEMENT_CHARS).contains(&length) {
                return Err(invalid(format!(
                    "Widget {position}: QueryStatement must be 1 to {MAX_STATEMENT_CHARS} characters long, got {length}"
                )));
            }
            if let Some(parameters) = &widget.query_parameters {
                if !(1..=MAX_QUERY_PARAMETERS).contains(&parameters.len()) {
                    return Err(invalid(format!(
                        "Widget {position}: QueryParameters must hold 1 to {MAX_QUERY_PARAMETERS} values, got {}",
                        parameters.len()
                    )));
                }
                if let Some(bad) = parameters
                    .iter()
                    .find(|p| !(1..=1024).contains(&p.chars().count()))
                {
                    return Err(invalid(format!(
                        "Widget {position}: each query parameter must be 1 to 1024 characters long, got {}",
                        bad.chars().count()
                    )));
                }
            }
            let placeholders = widget.query_statement.matches('?').count();
            let parameters = widget.query_parameters.as_ref().map_or(0, Vec::len);
            if placeholders != parameters {
                return Err(DashboardError::InvalidQueryStatement(format!(
                    "Widget {position}: the query has {placeholders} ? placeholders but {parameters} QueryParameters; give one parameter per ?"
                )));
            }
            if let Some((key, value)) = widget
                .view_properties
                .iter()
                .find(|(key, value)| !view_key(key) || !view_value(value))
            {
                return Err(invalid(format!(
                    "Widget {position}: ViewProperties {key}={value} is not valid: keys are 3 to 128 characters of letters, digits and ._-, values 1 to 128 of letters, digits, spaces and ._-"
                )));
            }
            Ok(WidgetRecord {
                query_alias: format!("widget-{position}"),
                query_statement: widget.query_statement.clone(),
                query_parameters: widget.query_parameters.clone(),
                view_properties: widget.view_properties.clone(),
            })
        })
        .collect()
}

/// A schedule's timing: every `period`, at offsets of `period` from `time_of_day` UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence {
    pub period: Duration,
    pub time_of_day: NaiveTime,
}

impl Cadence {
    /// The first run strictly after `now`.
    pub fn next_after(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let anchor = now.date_naive().and_time(self.time_of_day).and_utc();
        let period = self.period.num_seconds();
        let since = (now - anchor).num_seconds();
        // The number of whole periods from the anchor to the first run after now.
        let steps = since.div_euclid(period) + 1;
        anchor + Duration::seconds(steps * period)
    }
}

/// Checks a `RefreshSchedule`; returns its cadence when its `Status` is ENABLED (absent
/// Status: DISABLED).
pub fn schedule(given: &RefreshSchedule) -> Result<Option<Cadence>, DashboardError> {
    let time_of_day = match &given.time_of_day {
        None => NaiveTime::MIN,
        Some(value) => parse_time_of_day(value)?,
    };
    let period = match &given.frequency {
        None => None,
        Some(frequency) => {
            let value = frequency.value.ok_or_else(|| {
                invalid("RefreshSchedule.Frequency.Value is required with a Frequency".into())
            })?;
            let hours = match &frequency.unit {
                Some(RefreshScheduleFrequencyUnit::Hours) if [1, 6, 12, 24].contains(&value) => {
                    i64::from(value)
                }
                Some(RefreshScheduleFrequencyUnit::Hours) => {
                    return Err(invalid(format!(
                        "RefreshSchedule.Frequency.Value {value} is not valid for HOURS: use 1, 6, 12 or 24"
                    )))
                }
                Some(RefreshScheduleFrequencyUnit::Days) if value == 1 => 24,
                Some(RefreshScheduleFrequencyUnit::Days) => {
                    return Err(invalid(format!(
                        "RefreshSchedule.Frequency.Value {value} is not valid for DAYS: use 1"
                    )))
                }
                Some(RefreshScheduleFrequencyUnit::Unknown(unit)) => {
                    return Err(invalid(format!(
                        "RefreshSchedule.Frequency.Unit {unit} is not one of HOURS, DAYS"
                    )))
                }
                None => {
                    return Err(invalid(
                        "RefreshSchedule.Frequency.Unit is required with a Frequency".into(),
                    ))
                }
            };
            Some(Duration::hours(hours))
        }
    };
    match &given.status {
        Some(RefreshScheduleStatus::Enabled) => {
            let period = period.ok_or_else(|| {
                invalid("RefreshSchedule.Frequency is required when its Status is ENABLED".into())
            })?;
            Ok(Some(Cadence {
                period,
                time_of_day,
            }))
        }
        Some(RefreshScheduleStatus::Disabled) | None => Ok(None),
        Some(RefreshScheduleStatus::Unknown(status)) => Err(invalid(format!(
            "RefreshSchedule.Status {status} is not one of ENABLED, DISABLED"
        ))),
    }
}

/// `TimeOfDay`: `HH:MM`, UTC.
fn parse_time_of_day(value: &str) -> Result<NaiveTime, DashboardError> {
    let bad = || {
        invalid(format!(
            "RefreshSchedule.TimeOfDay {value} is not a time of day: use HH:MM (UTC), 00:00 to 23:59"
        ))
    };
    let (hours, minutes) = value.split_once(':').ok_or_else(bad)?;
    if hours.len() != 2 || minutes.len() != 2 {
        return Err(bad());
    }
    let hours: u32 = hours.parse().map_err(|_| bad())?;
    let minutes: u32 = minutes.parse().map_err(|_| bad())?;
    NaiveTime::from_hms_opt(hours, minutes, 0).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentrail_operations::RefreshScheduleFrequency;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn schedule_of(unit: RefreshScheduleFrequencyUnit, value: i32, time: &str) -> RefreshSchedule {
        RefreshSchedule {
            frequency: Some(RefreshScheduleFrequency {
                unit: Some(unit),
                value: Some(value),
            }),
            status: Some(RefreshScheduleStatus::Enabled),
            time_of_day: Some(time.into()),
        }
    }

    #[test]
    fn names_follow_the_model() {
        assert!(name("my-dash_1", "Name").is_ok());
        assert!(name("ab", "Name").is_err());
        assert!(name(&"a".repeat(129), "Name").is_err());
        assert!(name("has space", "Name").is_err());
        assert!(name("dots.no", "Name").is_err());
    }

    #[test]
    fn frequencies_are_the_documented_ones() {
        use RefreshScheduleFrequencyUnit::{Days, Hours};
        for hours in [1, 6, 12, 24] {
            assert!(schedule(&schedule_of(Hours, hours, "00:00")).is_ok());
        }
        assert!(schedule(&schedule_of(Hours, 2, "00:00")).is_err());
        assert!(schedule(&schedule_of(Days, 1, "00:00")).is_ok());
        assert!(schedule(&schedule_of(Days, 2, "00:00")).is_err());
        assert!(schedule(&schedule_of(Days, 1, "24:00")).is_err());
        assert!(schedule(&schedule_of(Days, 1, "7:30")).is_err());
        let enabled_without_frequency = RefreshSchedule {
            status: Some(RefreshScheduleStatus::Enabled),
            ..RefreshSchedule::default()
        };
        assert!(schedule(&enabled_without_frequency).is_err());
        let disabled = RefreshSchedule {
            status: Some(RefreshScheduleStatus::Disabled),
            ..RefreshSchedule::default()
        };
        assert_eq!(schedule(&disabled).unwrap(), None);
    }

    #[test]
    fn next_run_follows_the_time_of_day() {
        use RefreshScheduleFrequencyUnit::{Days, Hours};
        let daily = schedule(&schedule_of(Days, 1, "06:30")).unwrap().unwrap();
        assert_eq!(
            daily.next_after(at("2026-01-10T05:00:00Z")),
            at("2026-01-10T06:30:00Z")
        );
        assert_eq!(
            daily.next_after(at("2026-01-10T06:30:00Z")),
            at("2026-01-11T06:30:00Z")
        );
        let six_hourly = schedule(&schedule_of(Hours, 6, "01:15")).unwrap().unwrap();
        assert_eq!(
            six_hourly.next_after(at("2026-01-10T00:00:00Z")),
            at("2026-01-10T01:15:00Z")
        );
        assert_eq!(
            six_hourly.next_after(at("2026-01-10T20:00:00Z")),
            at("2026-01-11T01:15:00Z")
        );
        let hourly = schedule(&schedule_of(Hours, 1, "00:45")).unwrap().unwrap();
        assert_eq!(
            hourly.next_after(at("2026-01-10T13:50:00Z")),
            at("2026-01-10T14:45:00Z")
        );
    }

    #[test]
    fn widgets_need_one_parameter_per_placeholder() {
        let widget = |statement: &str, parameters: Option<Vec<&str>>| RequestWidget {
            query_statement: statement.into(),
            query_parameters: parameters.map(|p| p.into_iter().map(String::from).collect()),
            view_properties: [("View".to_string(), "Table".to_string())].into(),
        };
        let ok = widgets(&[widget(
            "SELECT eventName FROM s WHERE eventTime > '?'",
            Some(vec!["$StartTime$"]),
        )])
        .unwrap();
        assert_eq!(ok[0].query_alias, "widget-1");
        assert!(matches!(
            widgets(&[widget("SELECT 1 FROM s WHERE a = '?'", None)]),
            Err(DashboardError::InvalidQueryStatement(_))
        ));
        let eleven: Vec<_> = (0..11).map(|_| widget("SELECT 1 FROM s", None)).collect();
        assert!(matches!(
            widgets(&eleven),
            Err(DashboardError::ServiceQuotaExceeded(_))
        ));
        let mut bad_view = widget("SELECT 1 FROM s", None);
        bad_view
            .view_properties
            .insert("Title".into(), "no/slashes".into());
        assert!(matches!(
            widgets(&[bad_view]),
            Err(DashboardError::Validation(_))
        ));
    }
}
