//! SNS topics that trails notify, kept in the data dir, and the `opentrail topics` commands.

use crate::config::{DataDirArgs, TopicsCommand};
use crate::datadir::DataDir;
use opentrail_notify::TopicRegistry;
use opentrail_trails::TopicDirectory;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The registry file of versions that kept topics outside the metadata store (imported on
/// open).
pub fn topics_path(data_dir: &Path) -> PathBuf {
    data_dir.join("notify").join("topics.json")
}

/// The registry as the trails service sees it.
pub struct Topics(pub Arc<TopicRegistry>);

impl TopicDirectory for Topics {
    fn topic_exists(&self, topic_arn: &str) -> bool {
        self.0.topic_exists(topic_arn)
    }
}

fn open(data: &DataDirArgs) -> anyhow::Result<(DataDir, TopicRegistry)> {
    let dir = DataDir::open(data)?;
    let registry = TopicRegistry::open(dir.meta.clone(), &topics_path(&dir.path))?;
    Ok((dir, registry))
}

pub fn topics(command: TopicsCommand) -> anyhow::Result<()> {
    match command {
        TopicsCommand::Create {
            data,
            region,
            account,
            name,
        } => {
            let (dir, registry) = open(&data)?;
            let account = dir.account_or_bootstrap(account.as_deref())?;
            let topic = registry.create_topic(account.as_str(), &region, &name)?;
            println!("{}", topic.arn);
        }
        TopicsCommand::List { data } => {
            let (_, registry) = open(&data)?;
            for topic in registry.list_topics() {
                println!("{}", topic.arn);
                for subscription in &topic.subscriptions {
                    println!(
                        "  {}\t{}",
                        subscription.arn,
                        subscription.endpoint.describe()
                    );
                }
            }
        }
        TopicsCommand::Delete { data, topic_arn } => {
            let (_, registry) = open(&data)?;
            registry.delete_topic(&topic_arn)?;
            println!("deleted topic {topic_arn}");
        }
        TopicsCommand::Subscribe {
            data,
            topic_arn,
            webhook,
            secret,
            sns_endpoint,
            sns_topic_arn,
            sns_region,
            sns_access_key,
            sns_secret_key,
            allow_private_targets,
        } => {
            let (_, registry) = open(&data)?;
            let subscription = match (webhook, sns_endpoint) {
                (Some(url), None) => {
                    registry.subscribe_webhook(&topic_arn, &url, secret, allow_private_targets)?
                }
                (None, Some(endpoint)) => {
                    let (Some(target), Some(key), Some(secret_key)) =
                        (sns_topic_arn, sns_access_key, sns_secret_key)
                    else {
                        anyhow::bail!("--sns-endpoint needs --sns-topic-arn, --sns-access-key and --sns-secret-key");
                    };
                    registry.subscribe_sns(
                        &topic_arn,
                        &endpoint,
                        &key,
                        &secret_key,
                        &sns_region,
                        &target,
                    )?
                }
                _ => anyhow::bail!("give exactly one of --webhook URL or --sns-endpoint URL"),
            };
            println!("{}", subscription.arn);
            if let opentrail_notify::Endpoint::Webhook { secret, .. } = &subscription.endpoint {
                println!("webhook secret (verify X-OpenTrail-Signature with it): {secret}");
            }
        }
        TopicsCommand::Unsubscribe {
            data,
            subscription_arn,
        } => {
            let (_, registry) = open(&data)?;
            registry.unsubscribe(&subscription_arn)?;
            println!("deleted subscription {subscription_arn}");
        }
    }
    Ok(())
}
