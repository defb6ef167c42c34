//! GetTrailStatus, StartLogging, StopLogging.

use crate::{read_status, write_status, RequestContext, TrailError, TrailService};
use chrono::{DateTime, Utc};
use opentrail_model::iso8601;
use opentrail_operations::{
    GetTrailStatusRequest, GetTrailStatusResponse, StartLoggingRequest, StartLoggingResponse,
    StopLoggingRequest, StopLoggingResponse, Timestamp,
};

/// AWS sends the `*AttemptTime`/`*Succeeded`/`TimeLogging*` members as ISO 8601 strings,
/// empty when nothing happened yet.
fn iso_or_empty(time: Option<DateTime<Utc>>) -> Option<String> {
    Some(time.map(iso8601).unwrap_or_default())
}

impl TrailService {
    pub async fn get_trail_status(
        &self,
        ctx: &RequestContext,
        input: GetTrailStatusRequest,
    ) -> Result<GetTrailStatusResponse, TrailError> {
        let trail = self.resolve(ctx, &input.name)?;
        let status = read_status(&self.direct(), &trail)?;
        let s = &status;
        Ok(GetTrailStatusResponse {
            is_logging: Some(s.is_logging),
            latest_delivery_error: s.latest_delivery_error.clone(),
            latest_notification_error: s.latest_notification_error.clone(),
            latest_delivery_time: s.latest_delivery_time.map(Timestamp),
            latest_notification_time: s.latest_notification_time.map(Timestamp),
            start_logging_time: s.start_logging_time.map(Timestamp),
            stop_logging_time: s.stop_logging_time.map(Timestamp),
            latest_digest_delivery_time: s.latest_digest_delivery_time.map(Timestamp),
            latest_digest_delivery_error: s.latest_digest_delivery_error.clone(),
            latest_delivery_attempt_time: iso_or_empty(s.latest_delivery_attempt_time),
            latest_notification_attempt_time: iso_or_empty(s.latest_notification_attempt_time),
            latest_notification_attempt_succeeded: iso_or_empty(
                s.latest_notification_attempt_succeeded,
            ),
            latest_delivery_attempt_succeeded: iso_or_empty(s.latest_delivery_attempt_succeeded),
            time_logging_started: iso_or_empty(s.start_logging_time),
            time_logging_stopped: iso_or_empty(s.stop_logging_time),
            ..GetTrailStatusResponse::default()
        })
    }

    pub async fn start_logging(
        &self,
        ctx: &RequestContext,
        input: StartLoggingRequest,
    ) -> Result<StartLoggingResponse, TrailError> {
        self.set_logging(ctx, &input.name, true).await?;
        Ok(StartLoggingResponse {})
    }

    pub async fn stop_logging(
        &self,
        ctx: &RequestContext,
        input: StopLoggingRequest,
    ) -> Result<StopLoggingResponse, TrailError> {
        self.set_logging(ctx, &input.name, false).await?;
        Ok(StopLoggingResponse {})
    }

    async fn set_logging(
        &self,
        ctx: &RequestContext,
        name: &str,
        logging: bool,
    ) -> Result<(), TrailError> {
        let now = self.clock.now();
        let changed = self.write(|tx| {
            let trail = self.resolve_for_write_in(tx, ctx, name)?;
            let mut status = read_status(tx, &trail)?;
            if status.is_logging == logging {
                return Ok(None);
            }
            status.is_logging = logging;
            if logging {
                status.start_logging_time = Some(now);
                status.logging_since_offset = Some((self.log_position)());
            } else {
                status.stop_logging_time = Some(now);
            }
            write_status(tx, &trail, &status)?;
            Ok(Some(trail))
        })?;
        let Some(trail) = changed else {
            return Ok(());
        };
        tracing::info!(trail = %trail.arn(), logging, "changed logging state");
        Ok(())
    }
}
