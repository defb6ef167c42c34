//! What selectors see of an event model record.

use crate::EventView;
use opentrail_model::EventRecord;

impl EventView for EventRecord {
    fn event_category(&self) -> &str {
        EventRecord::event_category(self)
    }

    fn event_source(&self) -> &str {
        EventRecord::event_source(self)
    }

    fn event_name(&self) -> &str {
        EventRecord::event_name(self)
    }

    fn event_type(&self) -> &str {
        EventRecord::event_type(self)
    }

    fn read_only(&self) -> Option<bool> {
        EventRecord::read_only(self)
    }

    fn management_event(&self) -> bool {
        EventRecord::management_event(self)
    }

    /// (type, ARN) pairs; an element written with `ARNPrefix` instead of `ARN`
    /// contributes its prefix, and missing parts are empty strings.
    fn resources(&self) -> Vec<(String, String)> {
        EventRecord::resources(self)
            .map(|resource| {
                let arn = resource.arn.or(resource.arn_prefix).unwrap_or("");
                let resource_type = resource.resource_type.unwrap_or("");
                (resource_type.to_owned(), arn.to_owned())
            })
            .collect()
    }

    fn user_identity_arn(&self) -> Option<&str> {
        self.user_identity().arn
    }

    fn session_credential_from_console(&self) -> Option<bool> {
        EventRecord::session_credential_from_console(self)
    }

    fn error_code(&self) -> Option<&str> {
        EventRecord::error_code(self)
    }

    fn vpc_endpoint_id(&self) -> Option<&str> {
        EventRecord::vpc_endpoint_id(self)
    }
}
