//! Where the commands find things: the object store trails deliver to, and the file in a
//! data dir that holds its bootstrap credentials.

use crate::args::{ObjectStoreKind, S3Args};
use anyhow::{bail, Context};
use opentrail_objstore::{LocalStore, ObjectStore, S3Config, S3Store};
use std::path::Path;
use std::sync::Arc;

/// The file in a data dir holding the bootstrap access key, which client commands use
/// when no key is given.
pub const CREDENTIALS_FILE: &str = "credentials";

/// The object store trails deliver to: bucket directories in the data dir
/// (`--object-store file`), or an S3-compatible server (`--object-store s3`).
pub fn object_store(data_dir: &Path, s3: &S3Args) -> anyhow::Result<Arc<dyn ObjectStore>> {
    match s3.object_store {
        ObjectStoreKind::File => local_store(data_dir, s3),
        ObjectStoreKind::S3 => s3_store(s3),
    }
}

/// The `--s3-*` settings given, by flag name.
fn s3_settings_given(s3: &S3Args) -> Vec<&'static str> {
    [
        ("--s3-endpoint", s3.s3_endpoint.is_some()),
        ("--s3-access-key", s3.s3_access_key.is_some()),
        ("--s3-secret-key", s3.s3_secret_key.is_some()),
        ("--s3-region", s3.s3_region.is_some()),
        ("--s3-path-style", s3.s3_path_style.is_some()),
    ]
    .into_iter()
    .filter_map(|(flag, given)| given.then_some(flag))
    .collect()
}

fn local_store(data_dir: &Path, s3: &S3Args) -> anyhow::Result<Arc<dyn ObjectStore>> {
    let given = s3_settings_given(s3);
    if !given.is_empty() {
        bail!(
            "{} given with --object-store file: add --object-store s3 (OPENTRAIL_OBJECT_STORE=s3) to keep buckets in that S3 server, or drop the --s3-* settings (and OPENTRAIL_S3_* variables)",
            given.join(", ")
        );
    }
    let root = data_dir.join("buckets");
    std::fs::create_dir_all(&root)
        .with_context(|| format!("failed to create {}", root.display()))?;
    Ok(Arc::new(LocalStore::new(root)))
}

fn s3_store(s3: &S3Args) -> anyhow::Result<Arc<dyn ObjectStore>> {
    let Some(endpoint) = &s3.s3_endpoint else {
        bail!("--object-store s3 needs --s3-endpoint URL (or OPENTRAIL_S3_ENDPOINT), with --s3-access-key and --s3-secret-key");
    };
    let (Some(access_key), Some(secret_key)) = (&s3.s3_access_key, &s3.s3_secret_key) else {
        bail!("--object-store s3 needs --s3-access-key and --s3-secret-key (or OPENTRAIL_S3_ACCESS_KEY / OPENTRAIL_S3_SECRET_KEY)");
    };
    let store = S3Store::new(S3Config {
        endpoint: endpoint.clone(),
        access_key: access_key.clone(),
        secret_key: secret_key.clone(),
        region: s3
            .s3_region
            .clone()
            .unwrap_or_else(|| "us-east-1".to_owned()),
        path_style: s3.s3_path_style.unwrap_or(true),
    })
    .map_err(|e| anyhow::anyhow!("failed to configure S3 endpoint {endpoint}: {e}"))?;
    Ok(Arc::new(store))
}
