//! Admin commands that work on the data dir directly (also while the server runs).

use crate::config::{AccountsCommand, BucketsCommand, DataDirArgs, KeysCommand, ObjectStoreKind};
use crate::datadir::{new_access_key, object_store, random_account_id, DataDir};
use anyhow::bail;
use opentrail_meta::{AccountOrigin, AccountRecord};
use opentrail_model::{iso8601, AccountId};
use opentrail_trails::BUCKET_OWNERS;
use serde_json::json;

pub fn accounts(command: AccountsCommand) -> anyhow::Result<()> {
    match command {
        AccountsCommand::Create {
            data_dir,
            account_id,
        } => {
            let data = DataDir::open(&DataDirArgs {
                data_dir,
                account_id: None,
            })?;
            let account = match &account_id {
                Some(id) => AccountId::parse(id)
                    .map_err(|why| anyhow::anyhow!("invalid --account-id: {why}"))?,
                None => AccountId::parse(&random_account_id()).map_err(anyhow::Error::msg)?,
            };
            let added = data.meta.register_account(&AccountRecord {
                account_id: account.to_string(),
                origin: AccountOrigin::Cli,
                created_at: iso8601(chrono::Utc::now()),
            })?;
            if !added {
                bail!("account {account} already exists on this server");
            }
            // The account's root key acts for it alone: unlike the bootstrap root key it may
            // neither ingest other accounts' records nor forward this server's audit events.
            let mut key = new_access_key(&account, "root", true, false);
            key.forward_audit = false;
            data.meta.put_access_key(&key)?;
            println!(
                "{}",
                json!({
                    "AccountId": key.account_id,
                    "AccessKeyId": key.access_key_id,
                    "SecretAccessKey": key.secret_access_key,
                })
            );
        }
        AccountsCommand::List { data } => {
            let data = DataDir::open(&data)?;
            for account in data.meta.list_accounts()? {
                println!(
                    "{}\t{}\t{}",
                    account.account_id,
                    account.origin.as_str(),
                    account.created_at
                );
            }
        }
    }
    Ok(())
}

pub fn keys(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create {
            data,
            account,
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
            let account = data.account_or_bootstrap(account.as_deref())?;
            let mut key = new_access_key(&account, &user, false, ingest_any_account);
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
        BucketsCommand::Create {
            data,
            s3,
            account,
            name,
        } => {
            opentrail_objstore::validate_bucket_name(&name)
                .map_err(|why| anyhow::anyhow!("invalid bucket name {name}: {why}"))?;
            // Embedded buckets have an owner account; buckets on an S3 server have none
            // (every account may name them).
            // A data dir not yet set up (no server has run on it, no --account given)
            // gets an unowned bucket rather than an account chosen at random here.
            let fresh = account.is_none() && !crate::datadir::is_set_up(&data.data_dir);
            let owner = if s3.object_store == ObjectStoreKind::File && !fresh {
                let dir = DataDir::open(&data)?;
                let owner = dir.account_or_bootstrap(account.as_deref())?;
                if let Some(current) = dir.meta.get_document(BUCKET_OWNERS, &name)? {
                    if current != owner.as_str() {
                        bail!("bucket {name} exists and belongs to account {current}");
                    }
                }
                Some((dir, owner))
            } else {
                if account.is_some() {
                    bail!("--account records the owner of an embedded bucket; buckets on an S3 server (--object-store s3) have no owner here");
                }
                None
            };
            let store = object_store(&data.data_dir, &s3)?;
            store.create_bucket(&name).await?;
            if let Some((dir, owner)) = owner {
                dir.meta
                    .put_document(BUCKET_OWNERS, &name, owner.as_str())?;
                println!("created bucket {name} owned by account {owner}");
            } else {
                println!("created bucket {name}");
            }
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
            if s3.object_store == ObjectStoreKind::File {
                DataDir::open(&data)?
                    .meta
                    .delete_document(BUCKET_OWNERS, &name)?;
            }
            println!("deleted bucket {name}");
        }
    }
    Ok(())
}
