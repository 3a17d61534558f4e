//! PostgreSQL's change feed: `pg_notify` in each change's own transaction (PostgreSQL
//! delivers it at commit, and never for a rolled-back transaction), received on one
//! dedicated `LISTEN` connection per subscription.
//!
//! The listening connection is not from the pool: it is held for the life of the
//! subscription and must not be recycled or shared. It is opened with
//! `application_name` [`LISTENER_APPLICATION_NAME`], so operators can find it in
//! `pg_stat_activity`. A task owned by the subscription drives it: it forwards
//! notifications, checks the connection answers every `poll_interval` (a silently
//! broken connection would otherwise look like a quiet feed), and when the connection
//! is lost says so and reconnects with back-off (100 ms doubling to 5 s). Dropping the
//! subscription ends the task.
//!
//! Compiled inside `postgres.rs`, where it implements the sealed `FeedQueries` for
//! `Marker`.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel_async::RunQueryDsl;
use keyroute_core::{
    ChangeEvent, ChangeKind, ChangeSubscription, FeedSettings, FeedSignal, StoreResult,
};
use tokio::sync::mpsc;

use super::Marker;
use crate::sql::SqlStore;
use crate::sql::backend::sealed::FeedQueries;

type Conn = <Marker as keyroute_pool::Backend>::Connection;

/// The channel keyroute notifies and listens on.
pub const CHANNEL: &str = "keyroute_events";

/// The `application_name` of every listening connection.
pub const LISTENER_APPLICATION_NAME: &str = "keyroute-feed";

/// The longest a reconnecting listener waits between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How long the liveness check may take before the connection counts as lost.
const PING_TIMEOUT: Duration = Duration::from_secs(1);

impl FeedQueries for Marker {
    /// Notifies one event per subject, inside the caller's transaction (delivered at
    /// commit).
    async fn publish(
        conn: &mut Conn,
        kind: ChangeKind,
        subjects: &[&str],
    ) -> diesel::QueryResult<()> {
        use diesel::sql_types::Text;
        for subject in subjects {
            let payload = ChangeEvent::new(kind, *subject).to_payload();
            diesel::sql_query("SELECT pg_notify($1, $2)")
                .bind::<Text, _>(CHANNEL)
                .bind::<Text, _>(payload)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    async fn subscribe(
        store: &SqlStore<Self>,
        settings: &FeedSettings,
    ) -> Option<Box<dyn ChangeSubscription>> {
        let (tx, rx) = mpsc::channel(4096);
        let url = store.url().clone();
        let task = tokio::spawn(listen(url, settings.poll_interval, tx));
        Some(Box::new(Listener {
            signals: rx,
            _task: AbortOnDrop(task),
        }))
    }

    /// Notifications are not kept: there is nothing to purge (what `ChangeFeed`'s
    /// default answers for a store that keeps no events).
    async fn purge_events(_store: &SqlStore<Self>, _before: DateTime<Utc>) -> StoreResult<u64> {
        Ok(0)
    }
}

/// A subscription: the signals of the task that holds the listening connection.
struct Listener {
    signals: mpsc::Receiver<FeedSignal>,
    /// Held for its `Drop`, which ends the task.
    _task: AbortOnDrop,
}

/// Ends a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[async_trait]
impl ChangeSubscription for Listener {
    async fn next(&mut self) -> FeedSignal {
        match self.signals.recv().await {
            Some(signal) => signal,
            // The task only ends when this subscription is dropped.
            None => std::future::pending().await,
        }
    }
}

/// Listens until the subscription is dropped, reconnecting with back-off.
async fn listen(
    url: keyroute_pool::DatabaseUrl,
    check_every: Duration,
    tx: mpsc::Sender<FeedSignal>,
) {
    let mut backoff = Duration::from_millis(100);
    let mut told_down = false;
    loop {
        let mut went_live = false;
        let reason = match listen_once(&url, check_every, &tx, &mut went_live).await {
            Ok(()) => return, // the subscription is gone
            Err(reason) => reason,
        };
        if went_live {
            told_down = false;
            backoff = Duration::from_millis(100);
        }
        if !told_down {
            told_down = true;
            tracing::warn!(reason = %reason, "keyroute: the PostgreSQL change feed's LISTEN connection was lost; reconnecting");
            if tx.send(FeedSignal::Interrupted { reason }).await.is_err() {
                return;
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = backoff.saturating_mul(2).min(MAX_BACKOFF);
    }
}

/// One connection's life: connect, `LISTEN`, say `Live`, forward until it breaks.
/// `Ok` when the subscription was dropped, the reason otherwise.
async fn listen_once(
    url: &keyroute_pool::DatabaseUrl,
    check_every: Duration,
    tx: &mpsc::Sender<FeedSignal>,
    went_live: &mut bool,
) -> Result<(), String> {
    // The pool's own opener: the same sslmode / sslrootcert, so a server that
    // requires TLS gets it on this connection too.
    let (client, mut connection) = keyroute_pool::postgres_client(url.expose_secret(), |config| {
        config.application_name(LISTENER_APPLICATION_NAME);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
    })
    .await
    .map_err(|e| e.redacted(url).to_string())?;
    let (payloads, mut received) = mpsc::unbounded_channel::<String>();
    // Drives the connection; its messages are the notifications.
    let _driver = AbortOnDrop(tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(tokio_postgres::AsyncMessage::Notification(n))) => {
                    if payloads.send(n.payload().to_owned()).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            }
        }
    }));
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(|e| keyroute_pool::describe(&e))?;
    if tx.send(FeedSignal::Live).await.is_err() {
        return Ok(());
    }
    *went_live = true;
    let mut checks = tokio::time::interval(check_every.max(Duration::from_millis(10)));
    checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            payload = received.recv() => {
                let Some(payload) = payload else {
                    return Err("the connection closed".to_owned());
                };
                // A payload keyroute did not write is no change of ours.
                if let Some(event) = ChangeEvent::from_payload(&payload)
                    && tx.send(FeedSignal::Change(event)).await.is_err()
                {
                    return Ok(());
                }
            }
            _ = checks.tick() => {
                if tx.is_closed() {
                    return Ok(());
                }
                match tokio::time::timeout(PING_TIMEOUT, client.simple_query("")).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(keyroute_pool::describe(&e)),
                    Err(_) => return Err(format!("no answer within {PING_TIMEOUT:?}")),
                }
            }
        }
    }
}
