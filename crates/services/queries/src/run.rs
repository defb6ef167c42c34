//! Running one query: QUEUED until an execution slot is free, RUNNING on the engine
//! under the timeout, then FINISHED (results stored first), FAILED or TIMED_OUT. A
//! CancelQuery aborts the task; every status change checks in a transaction that the
//! query is still where this task left it, so a cancel never comes undone.

use crate::record::QueryRecord;
use crate::{decode, save_in, Inner, QueryError};
use opentrail_lake::QueryOutput;
use opentrail_meta::Documents;
use opentrail_model::{AccountId, Region};
use opentrail_operations::{DeliveryStatus, QueryStatus};
use std::sync::Arc;

/// Where a query's results go, and for whom.
pub(crate) struct Shipping {
    account: AccountId,
    region: Region,
    destination: crate::Destination,
}

/// What a query's execution came to.
enum Outcome {
    Finished(QueryOutput),
    Failed(String),
    TimedOut,
}

impl Inner {
    /// Starts the task of a query just stored QUEUED.
    pub(crate) fn spawn(self: &Arc<Self>, query: &QueryRecord, stores: Vec<String>) {
        let inner = Arc::clone(self);
        let (id, storage_key, statement) = (
            query.id.clone(),
            query.storage_key(),
            query.statement.clone(),
        );
        let shipping = query.destination.clone().map(|destination| Shipping {
            account: query.account.clone(),
            region: query.region.clone(),
            destination,
        });
        // Registered before the task can end and unregister itself.
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        let task = tokio::spawn(async move {
            inner
                .execute(&storage_key, &statement, &stores, shipping)
                .await;
            inner
                .tasks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id_of(&storage_key));
        });
        tasks.insert(id, task.abort_handle());
    }

    /// Stops this process's task of a query (after it was marked CANCELLED).
    pub(crate) fn abort(&self, id: &str) {
        let task = self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        if let Some(task) = task {
            task.abort();
        }
    }

    async fn execute(
        &self,
        storage_key: &str,
        statement: &str,
        stores: &[String],
        shipping: Option<Shipping>,
    ) {
        if !self.options.hold.is_zero() {
            tokio::time::sleep(self.options.hold).await;
        }
        let Ok(_slot) = self.slots.acquire().await else {
            return;
        };
        let started = self.now();
        let running = self.transition(storage_key, QueryStatus::Queued, |query| {
            query.status = QueryStatus::Running;
            query.started_at = Some(started);
        });
        match running {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::error!(key = storage_key, error = %e, "failed to mark query RUNNING");
                return;
            }
        }
        let outcome =
            match tokio::time::timeout(self.options.timeout, self.engine.run(statement, stores))
                .await
            {
                Err(_) => Outcome::TimedOut,
                Ok(Ok(output)) => Outcome::Finished(output),
                Ok(Err(e)) => Outcome::Failed(e.to_string()),
            };
        // The files to deliver are made before the query is FINISHED (its rows are at
        // hand); CSV and gzip work off the async workers.
        let files = match (&outcome, &shipping, self.delivery.get()) {
            (Outcome::Finished(output), Some(_), Some(delivery)) => Some(crate::blocking(|| {
                crate::delivery::result_files(&output.columns, &output.rows, delivery.file_bytes)
            })),
            _ => None,
        };
        match self.conclude(storage_key, outcome) {
            Ok(Some(completed)) => {
                if let (Some(files), Some(shipping)) = (files, shipping) {
                    self.ship(storage_key, files, shipping, completed).await;
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(key = storage_key, error = %e, "failed to store the end of a query");
                let _ = self.transition(storage_key, QueryStatus::Running, |query| {
                    query.status = QueryStatus::Failed;
                    query.ended_at = Some(self.now());
                    query.error_message = Some(format!("Query failed: {e}"));
                    if query.delivery_status.is_some() {
                        query.delivery_status = Some(DeliveryStatus::Failed);
                    }
                });
            }
        }
    }

    /// Delivers the files of a FINISHED query and records how that went.
    async fn ship(
        &self,
        storage_key: &str,
        files: Result<Vec<crate::ResultFile>, QueryError>,
        shipping: Shipping,
        completed: chrono::DateTime<chrono::Utc>,
    ) {
        let Some(delivery) = self.delivery.get() else {
            return;
        };
        let id = id_of(storage_key);
        let status = match files {
            Ok(files) => {
                delivery
                    .deliver(
                        crate::delivery::Shipment {
                            account: &shipping.account,
                            region: &shipping.region,
                            query_id: &id,
                            completed,
                            destination: &shipping.destination,
                        },
                        files,
                    )
                    .await
            }
            Err(e) => {
                tracing::error!(query = %id, error = %e, "failed to make the result files");
                DeliveryStatus::Failed
            }
        };
        let recorded = self.transition(storage_key, QueryStatus::Finished, |query| {
            query.delivery_status = Some(status.clone());
        });
        if let Err(e) = recorded {
            tracing::error!(query = %id, error = %e, "failed to record a delivery status");
        }
    }

    /// Stores the outcome of a RUNNING query (its results first, when FINISHED); returns
    /// when it ended if it is now FINISHED.
    fn conclude(
        &self,
        storage_key: &str,
        outcome: Outcome,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, QueryError> {
        let id = id_of(storage_key);
        let timeout = self.options.timeout;
        let (status, error_message, statistics, results_count) = match outcome {
            Outcome::Finished(output) => {
                let rows = output.result_rows();
                let count = crate::blocking(|| self.results.write(&id, &rows))?;
                (QueryStatus::Finished, None, Some(output.statistics), count)
            }
            Outcome::Failed(message) => (QueryStatus::Failed, Some(message), None, 0),
            Outcome::TimedOut => (
                QueryStatus::TimedOut,
                Some(format!(
                    "Query timed out: it ran longer than the limit of {} seconds",
                    timeout.as_secs()
                )),
                None,
                0,
            ),
        };
        let ended = self.now();
        let stored = self.transition(storage_key, QueryStatus::Running, |query| {
            query.status = status.clone();
            query.ended_at = Some(ended);
            query.error_message = error_message.clone();
            query.results_count = results_count;
            if query.delivery_status.is_some() && status != QueryStatus::Finished {
                // AWS delivers no partial results.
                query.delivery_status = Some(DeliveryStatus::Failed);
            }
            if let Some(statistics) = statistics {
                query.events_matched = statistics.events_matched;
                query.events_scanned = statistics.events_scanned;
                query.bytes_scanned = statistics.bytes_scanned;
            }
        })?;
        if !stored {
            // Cancelled (or purged) meanwhile: its results are not kept.
            self.results.remove(&id);
        }
        Ok((stored && status == QueryStatus::Finished).then_some(ended))
    }

    /// Applies `change` to the query if it is still `from`; returns whether it was.
    pub(crate) fn transition(
        &self,
        storage_key: &str,
        from: QueryStatus,
        mut change: impl FnMut(&mut QueryRecord),
    ) -> Result<bool, QueryError> {
        self.write(|tx: &dyn Documents| {
            let Some(value) = tx.get_document(crate::record::QUERIES, storage_key)? else {
                return Ok(false);
            };
            let mut query = decode(storage_key, &value)?;
            if query.status != from {
                return Ok(false);
            }
            change(&mut query);
            save_in(tx, &query)?;
            Ok(true)
        })
    }
}

/// The query id that ends a storage key (`account/region/id`).
fn id_of(storage_key: &str) -> String {
    storage_key
        .rsplit('/')
        .next()
        .unwrap_or(storage_key)
        .to_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_id_ends_the_storage_key() {
        assert_eq!(super::id_of("111122223333/us-east-1/abc-1"), "abc-1");
    }
}
