//! `opentrail stores list`: the account's event data stores in a region, from a running
//! server through ListEventDataStores with automatic paging.

use crate::args::{ListFormat, StoresCommand};
use crate::client::ApiClient;
use serde_json::{json, Value};
use std::io::Write;

/// Every event data store the server lists, page after page.
async fn all_stores(client: &ApiClient) -> anyhow::Result<Vec<Value>> {
    let mut input = json!({});
    let mut stores = Vec::new();
    loop {
        let page = client.call("ListEventDataStores", &input).await?;
        stores.extend(
            page["EventDataStores"]
                .as_array()
                .into_iter()
                .flatten()
                .cloned(),
        );
        match page.get("NextToken").and_then(Value::as_str) {
            Some(token) if !token.is_empty() => input["NextToken"] = json!(token),
            _ => return Ok(stores),
        }
    }
}

pub async fn stores(command: StoresCommand) -> anyhow::Result<()> {
    match command {
        StoresCommand::List { client, output } => {
            let client = ApiClient::new(&client)?;
            let stores = all_stores(&client).await?;
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            match output {
                ListFormat::Json => {
                    serde_json::to_writer_pretty(&mut out, &json!({ "EventDataStores": stores }))?;
                    writeln!(out)?;
                }
                ListFormat::Table => {
                    writeln!(
                        out,
                        "{:<32}  {:<18}  {:>9}  ARN",
                        "NAME", "STATUS", "RETENTION"
                    )?;
                    for store in &stores {
                        let text = |k: &str| store[k].as_str().unwrap_or("").to_owned();
                        let retention = store["RetentionPeriod"]
                            .as_i64()
                            .map_or(String::new(), |days| days.to_string());
                        writeln!(
                            out,
                            "{:<32}  {:<18}  {:>9}  {}",
                            text("Name"),
                            text("Status"),
                            retention,
                            text("EventDataStoreArn")
                        )?;
                    }
                }
            }
            Ok(())
        }
    }
}
