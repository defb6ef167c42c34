//! Import errors; each variant is exactly one CloudTrail exception, and `AwsError` tells
//! the wire layer its code, message and status (500 for `Internal`).

macro_rules! import_errors {
    ($($variant:ident => $code:literal),* $(,)?) => {
        #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
        pub enum ImportError {
            $(#[error("{0}")] $variant(String),)*
            /// A destination's own error (`EventDataStoreNotFoundException` …).
            #[error("{0}")]
            Store(#[from] opentrail_stores::StoreError),
        }

        impl opentrail_wire::AwsError for ImportError {
            fn code(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => $code,)*
                    Self::Store(e) => e.code(),
                }
            }

            fn message(&self) -> String {
                match self {
                    $(Self::$variant(m) => m.clone(),)*
                    Self::Store(e) => e.message(),
                }
            }
        }
    };
}

import_errors! {
    AccountHasOngoingImport => "AccountHasOngoingImportException",
    ImportNotFound => "ImportNotFoundException",
    InvalidImportSource => "InvalidImportSourceException",
    InvalidEventDataStoreStatus => "InvalidEventDataStoreStatusException",
    InvalidEventDataStoreCategory => "InvalidEventDataStoreCategoryException",
    InvalidParameter => "InvalidParameterException",
    InvalidNextToken => "InvalidNextTokenException",
    Internal => "InternalFailure",
}

impl From<opentrail_meta::MetaError> for ImportError {
    fn from(e: opentrail_meta::MetaError) -> Self {
        Self::Internal(e.to_string())
    }
}
