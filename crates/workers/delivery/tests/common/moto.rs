//! The shared moto_server of the integration tests (`opentrail-testkit`), started open
//! (any signature; the AWS CLI is given `testing` credentials), and S3 stores on it.

use std::time::Duration;

use opentrail_objstore::{S3Config, S3Store};
#[allow(unused_imports)] // each test binary uses a different subset
pub use opentrail_testkit::moto::{free_port, python, Moto};

/// An S3 store for the moto.
pub trait MotoStore {
    fn store(&self) -> S3Store;
}

impl MotoStore for Moto {
    fn store(&self) -> S3Store {
        store_at(&self.endpoint)
    }
}

/// An S3 store for `endpoint`, with short timeouts (the endpoint may be down).
pub fn store_at(endpoint: &str) -> S3Store {
    S3Store::with_timeouts(
        S3Config {
            endpoint: endpoint.to_owned(),
            access_key: "testing".to_owned(),
            secret_key: "testing".to_owned(),
            region: "us-east-1".to_owned(),
            path_style: true,
        },
        Duration::from_secs(5),
        Duration::from_secs(30),
    )
    .unwrap()
}
