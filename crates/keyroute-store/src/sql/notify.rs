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
    ChangeEvent, ChangeKind, ChangeSubscription, FeedSettings, FeedSignal, StoreError, StoreResult,
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

/// How long opening the listening connection (or its probe's) may take, unless the URL
/// says (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a new listening connection waits for its probe notification.
const PROBE_WITHIN: Duration = Duration::from_secs(3);

/// The start of a probe's payload: no change event's (those parse as events; this
/// does not, so other instances' listeners ignore it).
const PROBE_PREFIX: &str = "keyroute-probe:";

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
        let url = store.session_url().clone();
        let task = tokio::spawn(listen(url, settings.poll_interval, tx));
        Some(Box::new(Listener {
            signals: rx,
            _task: AbortOnDrop(task),
        }))
    }

    async fn verify_feed(store: &SqlStore<Self>) -> StoreResult<()> {
        verify(store.session_url()).await
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

/// A listening connection: the client (kept for `LISTEN` and pings), the payloads
/// it receives, and the task driving it (ended when dropped).
struct Listening {
    client: tokio_postgres::Client,
    received: mpsc::UnboundedReceiver<String>,
    _driver: AbortOnDrop,
}

/// Opens a listening connection to `url` and `LISTEN`s on [`CHANNEL`].
async fn open_listener(url: &keyroute_pool::DatabaseUrl) -> Result<Listening, String> {
    // The pool's own opener: the same sslmode / sslrootcert, so a server that
    // requires TLS gets it on this connection too.
    let (client, mut connection) = keyroute_pool::postgres_client(url.expose_secret(), |config| {
        config.application_name(LISTENER_APPLICATION_NAME);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
    })
    .await
    .map_err(|e| e.redacted(url).to_string())?;
    let (payloads, received) = mpsc::unbounded_channel::<String>();
    // Drives the connection; its messages are the notifications.
    let driver = AbortOnDrop(tokio::spawn(async move {
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
    Ok(Listening {
        client,
        received,
        _driver: driver,
    })
}

/// Checks that `listening` receives what is notified: notifies a probe from a second
/// connection to `url` and waits [`PROBE_WITHIN`] for it. Behind a pooler in
/// transaction mode `LISTEN` succeeds but holds no session, so nothing ever arrives:
/// without this a feed would say it is live and deliver nothing. Payloads received
/// meanwhile are returned, to be delivered once the feed is live.
async fn probe_delivery(
    url: &keyroute_pool::DatabaseUrl,
    listening: &mut Listening,
) -> Result<Vec<String>, Undelivered> {
    static PROBES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let probe = format!(
        "{PROBE_PREFIX}{}-{}",
        std::process::id(),
        PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let (notifier, connection) = keyroute_pool::postgres_client(url.expose_secret(), |config| {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
    })
    .await
    .map_err(|e| Undelivered::Failed(e.redacted(url).to_string()))?;
    let _driver = AbortOnDrop(tokio::spawn(async move {
        let _ended = connection.await;
    }));
    notifier
        .batch_execute(&format!("SELECT pg_notify('{CHANNEL}', '{probe}')"))
        .await
        .map_err(|e| Undelivered::Failed(keyroute_pool::describe(&e)))?;
    let mut early = Vec::new();
    let arrived = tokio::time::timeout(PROBE_WITHIN, async {
        while let Some(payload) = listening.received.recv().await {
            if payload == probe {
                return true;
            }
            early.push(payload);
        }
        false
    })
    .await;
    match arrived {
        Ok(true) => Ok(early),
        Ok(false) => Err(Undelivered::Failed("the connection closed".to_owned())),
        Err(_) => Err(Undelivered::Silent(format!(
            "LISTEN on this connection received nothing within {PROBE_WITHIN:?} of a NOTIFY: \
             it goes through a pooler in transaction mode (PgBouncer's pool_mode = transaction), \
             where LISTEN holds no session; give the change feed a direct connection \
             ([store] direct_url)"
        ))),
    }
}

/// Why a probe did not come back.
enum Undelivered {
    /// Nothing arrived in time: `LISTEN` holds no session.
    Silent(String),
    /// The probe could not be sent, or the listening connection closed.
    Failed(String),
}

impl From<Undelivered> for String {
    fn from(undelivered: Undelivered) -> Self {
        match undelivered {
            Undelivered::Silent(reason) | Undelivered::Failed(reason) => reason,
        }
    }
}

/// Checks once that a feed on `url` would receive what is notified (see
/// [`probe_delivery`]): `Misuse` when nothing arrives, `Unavailable` when the
/// connection cannot be had.
async fn verify(url: &keyroute_pool::DatabaseUrl) -> StoreResult<()> {
    let unavailable = |reason: String| StoreError::unavailable(format!("PostgreSQL: {reason}"));
    let mut listening = open_listener(url).await.map_err(unavailable)?;
    match probe_delivery(url, &mut listening).await {
        Ok(_) => Ok(()),
        Err(Undelivered::Silent(reason)) => Err(StoreError::Misuse(reason)),
        Err(Undelivered::Failed(reason)) => Err(unavailable(reason)),
    }
}

/// One connection's life: connect, `LISTEN`, check delivery, say `Live`, forward
/// until it breaks. `Ok` when the subscription was dropped, the reason otherwise.
async fn listen_once(
    url: &keyroute_pool::DatabaseUrl,
    check_every: Duration,
    tx: &mpsc::Sender<FeedSignal>,
    went_live: &mut bool,
) -> Result<(), String> {
    let mut listening = open_listener(url).await?;
    let early = probe_delivery(url, &mut listening)
        .await
        .map_err(String::from)?;
    if tx.send(FeedSignal::Live).await.is_err() {
        return Ok(());
    }
    for payload in early {
        if let Some(event) = ChangeEvent::from_payload(&payload)
            && tx.send(FeedSignal::Change(event)).await.is_err()
        {
            return Ok(());
        }
    }
    let Listening {
        client,
        mut received,
        _driver,
    } = listening;
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
