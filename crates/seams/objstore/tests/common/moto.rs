//! The shared moto_server of the integration tests (`opentrail-testkit`), started with
//! authentication enforced, and an S3 store on it.

use opentrail_objstore::{S3Config, S3Store};
#[allow(unused_imports)] // each test binary uses a different subset
pub use opentrail_testkit::moto::{python, Moto};

/// An S3 client for a [`Moto`] with its access key.
pub trait MotoS3 {
    fn config(&self, region: &str) -> S3Config;
    fn store(&self) -> S3Store;
}

impl MotoS3 for Moto {
    fn config(&self, region: &str) -> S3Config {
        S3Config {
            endpoint: self.endpoint.clone(),
            access_key: self.access_key.clone(),
            secret_key: self.secret_key.clone(),
            region: region.to_owned(),
            path_style: true,
        }
    }

    fn store(&self) -> S3Store {
        S3Store::new(self.config("us-east-1")).expect("S3 store")
    }
}
