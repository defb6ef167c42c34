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

/// `keys` (sorted) without the empty "folder" objects consoles create: a key ending in
/// `/`, or (as the object store lists it) one that other keys lie under.
fn without_folder_markers(keys: Vec<String>) -> Vec<String> {
    let is_folder = |key: &String| {
        let under = format!("{}/", key.trim_end_matches('/'));
        let first_at_or_after = keys.partition_point(|k| k.as_str() < under.as_str());
        key.ends_with('/')
            || keys
                .get(first_at_or_after)
                .is_some_and(|k| k.starts_with(&under))
    };
    let folders: Vec<bool> = keys.iter().map(is_folder).collect();
    keys.into_iter()
        .zip(folders)
        .filter_map(|(key, folder)| (!folder).then_some(key))
        .collect()
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
            .collect();
        keys.sort();
        let keys = without_folder_markers(keys);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_markers_are_dropped() {
        let keys = ["a/x", "a/x-y.json", "a/x/f.json.gz", "b/", "b/g.json", "c"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            without_folder_markers(keys),
            ["a/x-y.json", "a/x/f.json.gz", "b/g.json", "c"].map(String::from)
        );
    }
}
