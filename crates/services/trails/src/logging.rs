//! GetTrailStatus, StartLogging, StopLogging.

use crate::{RequestContext, TrailError, TrailService};
use chrono::{DateTime, Utc};
use opentrail_model::{epoch_seconds, iso8601};
use serde_json::{json, Map, Value};

fn put_epoch(out: &mut Map<String, Value>, key: &str, time: Option<DateTime<Utc>>) {
    if let Some(time) = time {
        out.insert(key.into(), json!(epoch_seconds(time)));
    }
}

fn put_text(out: &mut Map<String, Value>, key: &str, text: &Option<String>) {
    if let Some(text) = text {
        out.insert(key.into(), json!(text));
    }
}

impl TrailService {
    pub async fn get_trail_status(
        &self,
        ctx: &RequestContext,
        name: &str,
    ) -> Result<Value, TrailError> {
        let trail = self.resolve(ctx, name)?;
        let s = &trail.status;
        let mut out = Map::new();
        out.insert("IsLogging".into(), json!(s.is_logging));
        put_text(&mut out, "LatestDeliveryError", &s.latest_delivery_error);
        put_text(
            &mut out,
            "LatestNotificationError",
            &s.latest_notification_error,
        );
        put_epoch(&mut out, "LatestDeliveryTime", s.latest_delivery_time);
        put_epoch(
            &mut out,
            "LatestNotificationTime",
            s.latest_notification_time,
        );
        put_epoch(&mut out, "StartLoggingTime", s.start_logging_time);
        put_epoch(&mut out, "StopLoggingTime", s.stop_logging_time);
        put_epoch(
            &mut out,
            "LatestDigestDeliveryTime",
            s.latest_digest_delivery_time,
        );
        put_text(
            &mut out,
            "LatestDigestDeliveryError",
            &s.latest_digest_delivery_error,
        );
        // AWS sends these as strings, empty when nothing happened yet.
        let iso_or_empty = |t: Option<DateTime<Utc>>| json!(t.map(iso8601).unwrap_or_default());
        out.insert(
            "LatestDeliveryAttemptTime".into(),
            iso_or_empty(s.latest_delivery_attempt_time),
        );
        out.insert(
            "LatestNotificationAttemptTime".into(),
            iso_or_empty(s.latest_notification_attempt_time),
        );
        out.insert(
            "LatestNotificationAttemptSucceeded".into(),
            iso_or_empty(s.latest_notification_attempt_succeeded),
        );
        out.insert(
            "LatestDeliveryAttemptSucceeded".into(),
            iso_or_empty(s.latest_delivery_attempt_succeeded),
        );
        out.insert(
            "TimeLoggingStarted".into(),
            iso_or_empty(s.start_logging_time),
        );
        out.insert(
            "TimeLoggingStopped".into(),
            iso_or_empty(s.stop_logging_time),
        );
        Ok(Value::Object(out))
    }

    pub async fn start_logging(
        &self,
        ctx: &RequestContext,
        name: &str,
    ) -> Result<Value, TrailError> {
        self.set_logging(ctx, name, true).await
    }

    pub async fn stop_logging(
        &self,
        ctx: &RequestContext,
        name: &str,
    ) -> Result<Value, TrailError> {
        self.set_logging(ctx, name, false).await
    }

    async fn set_logging(
        &self,
        ctx: &RequestContext,
        name: &str,
        logging: bool,
    ) -> Result<Value, TrailError> {
        let _guard = self.write_lock.lock().await;
        let mut trail = self.resolve_for_write(ctx, name)?;
        if trail.status.is_logging == logging {
            return Ok(json!({}));
        }
        let now = self.clock.now();
        trail.status.is_logging = logging;
        if logging {
            trail.status.start_logging_time = Some(now);
            trail.status.logging_since_offset = Some((self.log_position)());
        } else {
            trail.status.stop_logging_time = Some(now);
        }
        self.save(&trail)?;
        tracing::info!(trail = %trail.arn(), logging, "changed logging state");
        Ok(json!({}))
    }
}
