//! `opentrail serve`: wire the services together and run the HTTP server.

use crate::config::{AuthMode, ServeArgs};
use crate::datadir::{object_store, query_results_dir, DataDir, DataDirLock};
use crate::history_feed;
use crate::insights_directory::{FileClock, TrailsInsights};
use crate::log_retention;
use crate::topics::{topics_path, Topics};
use crate::trail_directory::{record_notification, Incarnations, TrailsDirectory};
use opentrail_delivery::keys::DEFAULT_ROTATION;
use opentrail_delivery::{DeliveryConfig, DeliveryDeps, DeliveryWorker, KeyStore};
use opentrail_history::{EventIndex, HistoryOptions, HistoryStore};
use opentrail_http::api::router;
use opentrail_http::auth::Authenticator;
use opentrail_http::health::{supervise, Component, Health};
use opentrail_http::metrics::Metrics;
use opentrail_http::rate_limit::RateLimiter;
use opentrail_http::self_audit::EventLogAuditSink;
use opentrail_http::App;
use opentrail_lake::LakeWriter;
use opentrail_log::{DurableLog, EventLog, LogOptions, RetentionStatus};
use opentrail_model::SystemClock;
use opentrail_notify::{Notifier, TopicRegistry};
use opentrail_trails::TrailService;
use opentrail_wire::ServiceModel;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// How long, after the requests, event history, delivery and the lake writer may take to
/// stop and flush on shutdown. None holds anything acknowledged that the event log does
/// not: what is not flushed by then is indexed, delivered or written again after the restart.
const SHUTDOWN_FLUSH_LIMIT: Duration = Duration::from_secs(5);

/// SIGINT and SIGTERM, listened for from the moment this is called: a signal that arrives
/// before the listener polls the returned future still starts the graceful shutdown
/// (tokio registers a handler only when asked; until then SIGTERM kills the process).
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let (interrupt, terminate) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |stream: Option<tokio::signal::unix::Signal>| async move {
                match stream {
                    Some(mut stream) => {
                        stream.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = wait(interrupt) => {},
                _ = wait(terminate) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutting down");
    }
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // First of all: a second server on this data dir must stop here, before it recovers the
    // log, opens history or delivers anything under the feet of the first.
    let _lock = DataDirLock::acquire(&args.data.data_dir)?;
    let regions = opentrail_model::KnownRegions::with_extra(&args.extra_regions)
        .map_err(|e| anyhow::anyhow!("--extra-regions: {e}"))?;
    // A bad certificate fails before the log is recovered or anything else is opened.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(opentrail_http::listener::tls_acceptor(cert, key)?),
        _ => None,
    };
    let data = DataDir::open(&args.data)?;
    let buckets = object_store(&data.path, &args.s3)?;
    let clock = Arc::new(SystemClock);
    let log_dir = data.path.join("log");
    let log_options = LogOptions {
        direct_io: args.log_direct_io,
        segment_bytes: args.event_log_segment_bytes,
        tail_cache_bytes: args.event_log_tail_bytes,
        tail_unread_bytes: args.event_log_tail_unread_bytes,
        ..LogOptions::default()
    };
    // The embedded segment log. Past this point only its retention (segment files and
    // consumer registration, which belong to this implementation) sees the concrete type;
    // everything else sees the seam.
    // Its consumer cursors live in the metadata store (cursor files of an earlier version
    // move there on this open).
    let cursors = Arc::new(crate::datadir::log_cursors(&data.path, data.meta.clone()));
    let event_log = tokio::task::spawn_blocking(move || {
        EventLog::open_with_cursors(&log_dir, log_options, cursors)
    })
    .await??;
    let log: Arc<dyn DurableLog> = Arc::new(event_log.clone());
    if AuthMode::from(args.auth) == AuthMode::Open {
        tracing::warn!("AUTH IS OPEN: any well-formed SigV4 request is accepted without checking its signature; never use --auth open outside development");
    }
    let registry = Arc::new(TopicRegistry::open(
        data.meta.clone(),
        &topics_path(&data.path),
    )?);
    let trails = Arc::new(TrailService::new(
        data.meta.clone(),
        buckets.clone(),
        Arc::new(Topics(Arc::clone(&registry))),
        clock.clone(),
        {
            let log = Arc::clone(&log);
            Arc::new(move || log.durable_end())
        },
        args.list_trails_page_size,
    ));
    // A store collects the events logged while it ingests: its ingestion's start and
    // stop are recorded as the log's end (see crates/engines/lake/README.md).
    let stores = Arc::new(
        opentrail_stores::StoreService::with_pending_deletion(
            data.meta.clone(),
            clock.clone(),
            chrono::Duration::from_std(args.event_data_store_pending_deletion.0)?,
        )
        .with_log_end({
            let log = Arc::clone(&log);
            Arc::new(move || log.durable_end())
        })
        // Resource policies on dashboard ARNs ask the dashboards crate whether one exists.
        .with_dashboards(Arc::new(opentrail_dashboards::Directory)),
    );
    // The lake writer writes and Lake queries read the stores' files under the data dir.
    let lake_storage = crate::lake::storage(&data.path)?;
    let samples = Arc::new(opentrail_samples::SampleService::new(
        data.meta.clone(),
        Arc::clone(&stores),
        clock.clone(),
    )?);
    // Query results delivered to S3 are signed with the key that signs digests (the
    // region's key ListPublicKeys serves).
    let keys_dir = data.path.join("keys");
    let keys = Arc::new(
        tokio::task::spawn_blocking({
            let meta = data.meta.clone();
            move || KeyStore::open(meta, keys_dir, DEFAULT_ROTATION)
        })
        .await??,
    );
    let queries = Arc::new(
        opentrail_queries::QueryService::new(
            data.meta.clone(),
            clock.clone(),
            Arc::clone(&stores),
            // Stores of channel events have their own table schema; the catalog tells which.
            Arc::new(
                opentrail_lake::DataFusionEngine::new(lake_storage.clone()).with_catalog(Arc::new(
                    crate::lake::StoreDirectory::new(Arc::clone(&stores)),
                )),
            ),
            query_results_dir(&data.path),
            opentrail_queries::QueryOptions {
                timeout: args.query_timeout.0,
                hold: args.query_hold,
                ..opentrail_queries::QueryOptions::default()
            },
        )?
        .with_delivery(
            buckets.clone(),
            Arc::new(crate::lake::QuerySigner(Arc::clone(&keys))),
        )
        .with_templates(Arc::clone(&samples)),
    );
    let dashboards = Arc::new(opentrail_dashboards::DashboardService::new(
        data.meta.clone(),
        clock.clone(),
        Arc::clone(&queries),
    ));
    // Imports write into the lake beside the lake writer (`<data-dir>/lake/`).
    let imports = Arc::new(opentrail_imports::ImportService::new(
        data.meta.clone(),
        buckets.clone(),
        lake_storage.clone(),
        Arc::clone(&stores),
        clock.clone(),
    ));
    imports.resume()?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let status_trails = Arc::clone(&trails);
    let incarnations = Arc::new(Incarnations::default());
    let notified = Arc::clone(&incarnations);
    let notifier = Arc::new(Notifier::new(
        registry,
        http,
        Arc::new(move |outcome| record_notification(&status_trails, &notified, outcome)),
    ));
    let mut delivery_config = DeliveryConfig::new(data.path.join("delivery"));
    delivery_config.delivery_interval = args.delivery_interval.0;
    delivery_config.digest_interval = args.digest_interval.0;
    delivery_config.regions = regions.clone();
    let history_dir = data.path.join("history");
    // The event log is history's write-ahead log: after a crash the feed indexes again
    // what history had not flushed.
    let history_options = HistoryOptions {
        retention_days: args.history_retention_days,
        write_ahead_log: false,
        ..HistoryOptions::default()
    };
    let history: Arc<dyn EventIndex> = Arc::new(
        tokio::task::spawn_blocking(move || HistoryStore::open(&history_dir, history_options))
            .await??,
    );
    history_feed::check_resume(log.as_ref(), history.as_ref())?;
    // Every consumer registers before the first retention pass, so that none of the
    // records it resumes from can be deleted.
    {
        let (log, history, delivery) = (
            event_log.clone(),
            Arc::clone(&history),
            delivery_config.consumer.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let history_from = history.applied_offset().max(log.start_offset());
            log.register_consumer(history_feed::CONSUMER, history_from)?;
            // Insights analyses what arrives from the first start on (older events come
            // from event history when an engine is bootstrapped).
            log.register_consumer(opentrail_insights_worker::CONSUMER, log.durable_end())?;
            // The lake writer starts at the oldest record (stores admit only the records
            // logged since they were created, so its first pass over old records writes nothing).
            log.register_consumer(opentrail_lake::CONSUMER, log.start_offset())?;
            // Delivery starts at the oldest record when it never committed a cursor.
            log.register_consumer(&delivery, log.start_offset())
        })
        .await??;
    }
    let history_at_shutdown = Arc::clone(&history);
    let (stop_tasks, tasks_stopped) = tokio::sync::watch::channel(false);
    let health = Arc::new(Health::default());
    // History flushes by size; on a quiet server the feed flushes it after half the log's
    // retention so that history's cursor, and so retention, moves on.
    let history_idle_flush =
        (args.event_log_retention.0 / 2).clamp(Duration::from_secs(1), Duration::from_secs(600));
    let history_feed = supervise(
        Component::History,
        Arc::clone(&health),
        tasks_stopped.clone(),
        {
            let (log, history, clock, stopped) = (
                Arc::clone(&log),
                Arc::clone(&history),
                clock.clone(),
                tasks_stopped.clone(),
            );
            move || {
                history_feed::run(
                    Arc::clone(&log),
                    Arc::clone(&history),
                    clock.clone(),
                    history_idle_flush,
                    stopped.clone(),
                )
            }
        },
    );
    let delivery = supervise(
        Component::Delivery,
        Arc::clone(&health),
        tasks_stopped.clone(),
        {
            let (log, buckets, trails, notifier, keys, meta, clock, stopped) = (
                Arc::clone(&log),
                buckets,
                Arc::clone(&trails),
                Arc::clone(&notifier),
                Arc::clone(&keys),
                data.meta.clone(),
                clock.clone(),
                tasks_stopped.clone(),
            );
            // A test hook (`OPENTRAIL_FAULT_INJECT=delivery-panic-once`): the first delivery
            // task panics, to prove that the supervisor restarts it and reports it.
            let mut inject_panic = std::env::var("OPENTRAIL_FAULT_INJECT")
                .is_ok_and(|fault| fault == "delivery-panic-once");
            move || {
                let panic_now = std::mem::take(&mut inject_panic);
                let deps = DeliveryDeps {
                    log: Arc::clone(&log),
                    store: Arc::clone(&buckets),
                    directory: Arc::new(TrailsDirectory::new(
                        Arc::clone(&trails),
                        Arc::clone(&notifier),
                        Arc::clone(&incarnations),
                    )),
                    keys: Arc::clone(&keys),
                    meta: meta.clone(),
                    clock: clock.clone(),
                };
                let (config, stopped) = (delivery_config.clone(), stopped.clone());
                async move {
                    if panic_now {
                        panic!("injected fault: delivery-panic-once");
                    }
                    DeliveryWorker::start(config, deps)
                        .await?
                        .run(stopped)
                        .await?;
                    Ok(())
                }
            }
        },
    );
    let insights_clock: Arc<dyn opentrail_model::Clock> = match &args.insights_test_clock_file {
        Some(path) => Arc::new(FileClock::new(path.clone())),
        None => clock.clone(),
    };
    let insights_hub = Arc::new(opentrail_insights_worker::InsightsHub::new(
        data.path.join("insights"),
        insights_clock.clone(),
        true,
    ));
    let insights = supervise(
        Component::Insights,
        Arc::clone(&health),
        tasks_stopped.clone(),
        {
            let directory: Arc<dyn opentrail_insights_worker::InsightsDirectory> =
                Arc::new(TrailsInsights {
                    trails: Arc::clone(&trails),
                    stores: Arc::clone(&stores),
                    history: Arc::clone(&history),
                    regions: regions.clone(),
                    clock: insights_clock,
                });
            let (log, hub, stopped) = (
                Arc::clone(&log),
                Arc::clone(&insights_hub),
                tasks_stopped.clone(),
            );
            move || {
                let (log, hub, directory, stopped) = (
                    Arc::clone(&log),
                    Arc::clone(&hub),
                    Arc::clone(&directory),
                    stopped.clone(),
                );
                async move {
                    opentrail_insights_worker::run(log, hub, directory, stopped).await?;
                    Ok(())
                }
            }
        },
    );
    // Event data stores: the lake writer turns the log into each store's Parquet files.
    let lake = supervise(
        Component::Lake,
        Arc::clone(&health),
        tasks_stopped.clone(),
        {
            let (log, catalog, storage, clock, stopped, health) = (
                Arc::clone(&log),
                Arc::new(crate::lake::StoreDirectory::new(Arc::clone(&stores))),
                lake_storage,
                clock.clone(),
                tasks_stopped.clone(),
                Arc::clone(&health),
            );
            move || {
                let writer = LakeWriter::new(Arc::clone(&log), catalog.clone(), storage.clone());
                let (clock, stopped, health) =
                    (clock.clone(), stopped.clone(), Arc::clone(&health));
                async move {
                    let observe = move |failure: Option<&str>| match failure {
                        Some(why) => health.set_failed(Component::Lake, why),
                        None => health.set_ok(Component::Lake),
                    };
                    writer.run_observed(clock, stopped, &observe).await?;
                    Ok(())
                }
            }
        },
    );
    let retention_status = Arc::new(RetentionStatus::default());
    // Refreshes dashboards whose schedule is due; stops with the other tasks.
    let dashboard_refresh = tokio::spawn(crate::dashboard_refresh::run(
        Arc::clone(&dashboards),
        args.dashboard_refresh_check.0,
        tasks_stopped.clone(),
    ));
    let retention = tokio::spawn(log_retention::run(
        event_log.clone(),
        args.event_log_retention.0,
        Arc::clone(&retention_status),
        tasks_stopped.clone(),
    ));
    let metrics = Metrics::default();
    let audit = EventLogAuditSink::new(
        Arc::clone(&log),
        data.account.clone(),
        (args.unauthenticated_audit_rate_limit > 0.0).then(|| {
            RateLimiter::new(
                args.unauthenticated_audit_rate_limit,
                2.0 * args.unauthenticated_audit_rate_limit,
            )
        }),
        metrics.audit_drops(),
    );
    let app = Arc::new(App {
        model: ServiceModel::cloudtrail(),
        auth: Authenticator::new(args.auth.into(), data.meta.clone(), data.account.clone()),
        trails,
        stores,
        queries,
        dashboards,
        samples,
        imports,
        history,
        insights: insights_hub,
        keys,
        metrics,
        health: Arc::clone(&health),
        audit: Box::new(audit),
        log,
        log_retention: retention_status,
        clock,
        max_request_bytes: args.max_request_bytes,
        regions,
        history_retention_days: args.history_retention_days,
        account: data.account.clone(),
        accounts: Arc::new(opentrail_http::accounts::AccountRegistry::load(
            data.meta.clone(),
        )?),
        body_read_timeout: args.idle_timeout.0,
        lookup_rate_limit: (args.lookup_events_rate_limit > 0.0).then(|| {
            RateLimiter::new(
                args.lookup_events_rate_limit,
                args.lookup_events_rate_limit.max(1.0),
            )
        }),
    });

    let scheme = if tls.is_some() { "https" } else { "http" };
    let console = opentrail_console::router(
        Arc::clone(&app),
        data.meta.clone(),
        opentrail_console::ConsoleConfig {
            session_ttl: args.console_session.0,
            tls: tls.is_some(),
        },
    );
    // Signals are caught from here on, before "listening" is printed; earlier, while the
    // log is recovered and history opened, SIGTERM still stops the process at once.
    let shutdown = shutdown_signal();
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let local = listener.local_addr()?;
    tracing::info!(address = %local, account = %data.account, data_dir = %data.path.display(), "opentrail listening");
    {
        let mut out = std::io::stdout().lock();
        if let Some(key) = &data.new_bootstrap_key {
            writeln!(
                out,
                "created access key {} for account {}; credentials written to {}",
                key.access_key_id,
                data.account,
                data.credentials_path().display()
            )?;
            writeln!(
                out,
                "try: AWS_SHARED_CREDENTIALS_FILE={} aws --region us-east-1 --endpoint-url {scheme}://{local} cloudtrail describe-trails",
                data.credentials_path().display()
            )?;
        }
        writeln!(out, "listening on {scheme}://{local}")?;
        out.flush()?;
    }
    opentrail_http::listener::serve(
        listener,
        router(app).merge(console),
        opentrail_http::listener::ListenerOptions {
            max_connections: args.max_connections,
            header_read_timeout: args.header_read_timeout.0,
            idle_timeout: args.idle_timeout.0,
            shutdown_grace: args.shutdown_grace.0,
            tls,
        },
        shutdown,
    )
    .await;
    let _ = stop_tasks.send(true);
    let stopping_since = tokio::time::Instant::now();
    let stop_history = async {
        if let Err(e) = history_feed.await {
            tracing::error!(error = %e, "event history supervisor failed");
        }
        // So that a restart does not index again what the feed already did.
        match tokio::task::spawn_blocking(move || history_at_shutdown.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "failed to flush event history"),
            Err(e) => tracing::error!(error = %e, "event history flush task failed"),
        }
        let elapsed_ms = stopping_since.elapsed().as_millis();
        tracing::info!(elapsed_ms, "event history stopped and flushed");
    };
    let stop_delivery = async {
        if let Err(e) = delivery.await {
            tracing::error!(error = %e, "trail delivery supervisor failed");
        }
        let elapsed_ms = stopping_since.elapsed().as_millis();
        tracing::info!(elapsed_ms, "trail delivery stopped");
    };
    let stop_insights = async {
        if let Err(e) = insights.await {
            tracing::error!(error = %e, "insights supervisor failed");
        }
    };
    let stop_lake = async {
        if let Err(e) = lake.await {
            tracing::error!(error = %e, "lake writer supervisor failed");
        }
        let elapsed_ms = stopping_since.elapsed().as_millis();
        tracing::info!(elapsed_ms, "lake writer stopped");
    };
    let stopping = async { tokio::join!(stop_history, stop_delivery, stop_insights, stop_lake) };
    if tokio::time::timeout(SHUTDOWN_FLUSH_LIMIT, stopping)
        .await
        .is_err()
    {
        tracing::warn!(
            limit_ms = SHUTDOWN_FLUSH_LIMIT.as_millis(),
            "event history, delivery or the lake writer did not stop in time; exiting without waiting (each resumes from the event log on restart)"
        );
    }
    if let Err(e) = dashboard_refresh.await {
        tracing::error!(error = %e, "dashboard refresh task failed");
    }
    if let Err(e) = retention.await {
        tracing::error!(error = %e, "event log retention task failed");
    }
    tracing::info!("stopped");
    Ok(())
}
