//! Admin commands that work on the data dir directly (also while the server runs).

use crate::config::{BucketsCommand, KeysCommand};
use crate::datadir::{new_access_key, object_store, DataDir};
use anyhow::bail;
use serde_json::json;

pub fn keys(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create {
            data,
            user,
            ingest_any_account,
            forward_audit,
        } => {
            let user_ok = (1..=64).contains(&user.len())
                && user
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
            if !user_ok {
                bail!("invalid user name {user:?}: use 1-64 letters, digits and +=,.@_-");
            }
            let data = DataDir::open(&data)?;
            let mut key = new_access_key(&data.account, &user, false, ingest_any_account);
            key.forward_audit = forward_audit;
            data.meta.put_access_key(&key)?;
            println!(
                "{}",
                json!({
                    "AccessKeyId": key.access_key_id,
                    "SecretAccessKey": key.secret_access_key,
                    "UserName": key.user_name,
                    "AccountId": key.account_id,
                })
            );
        }
        KeysCommand::List { data } => {
            let data = DataDir::open(&data)?;
            for key in data.meta.list_access_keys()? {
                let kind = if key.is_root { "root" } else { "user" };
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    key.access_key_id, key.user_name, kind, key.account_id, key.created_at
                );
            }
        }
        KeysCommand::Delete {
            data,
            access_key_id,
        } => {
            let data = DataDir::open(&data)?;
            if !data.meta.delete_access_key(&access_key_id)? {
                bail!("no access key {access_key_id}");
            }
            println!("deleted access key {access_key_id}");
        }
    }
    Ok(())
}

pub async fn buckets(command: BucketsCommand) -> anyhow::Result<()> {
    match command {
        BucketsCommand::Create { data, s3, name } => {
            opentrail_objstore::validate_bucket_name(&name)
                .map_err(|why| anyhow::anyhow!("invalid bucket name {name}: {why}"))?;
            let store = object_store(&data.data_dir, &s3)?;
            store.create_bucket(&name).await?;
            println!("created bucket {name}");
        }
        BucketsCommand::List { data, s3 } => {
            let store = object_store(&data.data_dir, &s3)?;
            for bucket in store.list_buckets().await? {
                println!("{bucket}");
            }
        }
        BucketsCommand::Delete { data, s3, name } => {
            let store = object_store(&data.data_dir, &s3)?;
            store.delete_bucket(&name).await?;
            println!("deleted bucket {name}");
        }
    }
    Ok(())
}
