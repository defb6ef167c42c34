//! Where the commands find things: the object store trails deliver to, and the file in a
//! data dir that holds its bootstrap credentials.

use crate::args::S3Args;
use anyhow::{bail, Context};
use opentrail_objstore::{LocalStore, ObjectStore, S3Config, S3Store};
use std::path::Path;
use std::sync::Arc;

/// The file in a data dir holding the bootstrap access key, which client commands use
/// when no key is given.
pub const CREDENTIALS_FILE: &str = "credentials";

/// The object store trails deliver to: bucket directories in the data dir, or an S3 server.
pub fn object_store(data_dir: &Path, s3: &S3Args) -> anyhow::Result<Arc<dyn ObjectStore>> {
    let Some(endpoint) = &s3.s3_endpoint else {
        let root = data_dir.join("buckets");
        std::fs::create_dir_all(&root)
            .with_context(|| format!("failed to create {}", root.display()))?;
        return Ok(Arc::new(LocalStore::new(root)));
    };
    let (Some(access_key), Some(secret_key)) = (&s3.s3_access_key, &s3.s3_secret_key) else {
        bail!("--s3-endpoint needs --s3-access-key and --s3-secret-key (or OPENTRAIL_S3_ACCESS_KEY / OPENTRAIL_S3_SECRET_KEY)");
    };
    let store = S3Store::new(S3Config {
        endpoint: endpoint.clone(),
        access_key: access_key.clone(),
        secret_key: secret_key.clone(),
        region: s3.s3_region.clone(),
        path_style: s3.s3_path_style,
    })
    .map_err(|e| anyhow::anyhow!("failed to configure S3 endpoint {endpoint}: {e}"))?;
    Ok(Arc::new(store))
}
