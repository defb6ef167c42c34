//! Where `opentrail import` reads files from: a file, a directory tree, or the keys under
//! a prefix of a bucket; every file is listed, and the caller decides what each one is.

use crate::args::ImportArgs;
use crate::store::object_store;
use anyhow::{bail, Context};
use opentrail_objstore::ObjectStore;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The files of one import, in name order.
pub enum Source {
    /// The one file given on the command line.
    File(PathBuf),
    /// Every file under a directory.
    Tree(Vec<PathBuf>),
    Bucket {
        store: Arc<dyn ObjectStore>,
        bucket: String,
        keys: Vec<String>,
    },
}

impl Source {
    /// The names files are reported and remembered by (paths, or `s3://bucket/key`).
    pub fn names(&self) -> Vec<String> {
        match self {
            Source::File(file) => vec![file.display().to_string()],
            Source::Tree(files) => files.iter().map(|f| f.display().to_string()).collect(),
            Source::Bucket { bucket, keys, .. } => {
                keys.iter().map(|k| format!("s3://{bucket}/{k}")).collect()
            }
        }
    }

    /// Whether the user named the one file: then it is a log file whatever its name.
    pub fn is_single_file(&self) -> bool {
        matches!(self, Source::File(_))
    }

    pub async fn read(&self, index: usize) -> anyhow::Result<Vec<u8>> {
        let path = match self {
            Source::File(file) => file,
            Source::Tree(files) => &files[index],
            Source::Bucket {
                store,
                bucket,
                keys,
            } => {
                let key = &keys[index];
                let object = store
                    .get_object(bucket, key)
                    .await
                    .with_context(|| format!("failed to read s3://{bucket}/{key}"))?
                    .with_context(|| format!("s3://{bucket}/{key} disappeared"))?;
                return Ok(object.body.to_vec());
            }
        };
        tokio::fs::read(path)
            .await
            .with_context(|| format!("failed to read {}", path.display()))
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("failed to read {}", dir.display()))?
    {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

pub async fn find_source(args: &ImportArgs) -> anyhow::Result<Source> {
    if let Some(rest) = args.path.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let store = object_store(&args.client.data_dir, &args.s3)?;
        let mut keys: Vec<String> = store
            .list_objects(bucket, prefix)
            .await
            .with_context(|| format!("failed to list s3://{bucket}/{prefix}"))?
            .into_iter()
            .map(|o| o.key)
            .filter(|k| !k.ends_with('/'))
            .collect();
        keys.sort();
        return Ok(Source::Bucket {
            store,
            bucket: bucket.to_owned(),
            keys,
        });
    }
    let path = PathBuf::from(&args.path);
    if path.is_file() {
        return Ok(Source::File(path));
    }
    if !path.is_dir() {
        bail!(
            "{} is neither a file, a directory nor s3://bucket/prefix",
            args.path
        );
    }
    let mut files = Vec::new();
    walk(&path, &mut files)?;
    files.sort();
    Ok(Source::Tree(files))
}
