//! The change feed of the backends without push notifications (SQLite, MySQL/MariaDB):
//! an append-only `keyroute_events` table, written in each change's own transaction
//! and polled by every instance. Compiled inside each of those backend modules, like
//! `queries.rs`, where it implements the sealed `FeedQueries` for `Marker`.
//!
//! A poll is one query on the primary key, `id > low ORDER BY id LIMIT batch`, every
//! `poll_interval`. `low` is the poller's position: every event at or below it has
//! been delivered or is given up on (below).
//!
//! Out-of-order commits. MySQL hands out an auto-increment id when a row is inserted,
//! not when its transaction commits, so a lower id can become visible after a higher
//! one was read: transaction A takes id 7, B takes id 8 and commits, a poll reads 8,
//! then A commits 7. A poller that moved its position to 8 would skip 7 forever. So
//! the position only moves over ids it has *seen*: a missing id below the highest
//! seen one (a gap) holds `low` where it is, and every poll re-reads from there, so 7
//! is delivered by the first poll after A commits; ids seen already are not delivered
//! twice. A gap can also be permanent (a transaction rolled back after taking its id,
//! `auto_increment_increment` above 1); once it has stayed open for [`GAP_PATIENCE`]
//! the position moves past it. Events are inserted as the last write of their
//! transaction, so an id is taken milliseconds before its commit, far inside that
//! patience. (SQLite has one writer at a time and commits ids in order; the same code
//! serves it.)
//!
//! Starting (or restarting after an interruption), the position is the highest id
//! older than [`GAP_PATIENCE`], not the highest id: the events of the last few seconds
//! are delivered again, which costs an eviction each and covers a transaction that
//! took a lower id and had not committed when the position was read.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use keyroute_core::{
    ChangeEvent, ChangeKind, ChangeSubscription, FeedSettings, FeedSignal, StoreResult,
};

use super::schema::keyroute_events as events;
use super::{Marker, Ts};
use crate::sql::backend::sealed::FeedQueries;
use crate::sql::{SqlStore, Timestamp, map_error};

type Conn = <Marker as keyroute_pool::Backend>::Connection;

/// How long a gap in the ids may stay open before the poller moves past it.
pub(super) const GAP_PATIENCE: Duration = Duration::from_secs(30);

/// The longest a reconnecting poller waits between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl FeedQueries for Marker {
    /// Writes one event per subject, inside the caller's transaction. Call it as the
    /// transaction's last write (see the module docs on out-of-order commits).
    async fn publish(conn: &mut Conn, kind: ChangeKind, subjects: &[&str]) -> QueryResult<()> {
        let now = Ts::from_instant(Utc::now());
        for subject in subjects {
            diesel::insert_into(events::table)
                .values((
                    events::kind.eq(kind.as_str()),
                    events::subject.eq(*subject),
                    events::created_at.eq(now),
                ))
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    async fn subscribe(
        store: &SqlStore<Self>,
        settings: &FeedSettings,
    ) -> Option<Box<dyn ChangeSubscription>> {
        Some(Box::new(Poller {
            store: store.clone(),
            settings: settings.clone(),
            low: 0,
            seen: BTreeSet::new(),
            gap: None,
            buffer: VecDeque::new(),
            live: false,
            told_down: false,
            backoff: Duration::from_millis(100),
            next_poll: None,
            overrunning: None,
        }))
    }

    async fn purge_events(store: &SqlStore<Self>, before: DateTime<Utc>) -> StoreResult<u64> {
        let mut conn = store.conn().await?;
        let purged =
            diesel::delete(events::table.filter(events::created_at.lt(Ts::from_instant(before))))
                .execute(&mut *conn)
                .await
                .map(|n| n as u64)
                .map_err(map_error)?;
        crate::sql::done(conn).await?;
        Ok(purged)
    }
}

/// A poller of `keyroute_events`.
struct Poller {
    store: SqlStore<Marker>,
    settings: FeedSettings,
    /// Every id at or below this was delivered or given up on.
    low: i64,
    /// Ids above `low` already delivered.
    seen: BTreeSet<i64>,
    /// The gap holding `low`: at which `low`, since when.
    gap: Option<(i64, Instant)>,
    /// Events read and not yet handed out.
    buffer: VecDeque<ChangeEvent>,
    /// Whether `Live` was said since the last interruption.
    live: bool,
    /// Whether the current outage was reported.
    told_down: bool,
    backoff: Duration,
    /// When the next poll is due (`None`: now).
    next_poll: Option<tokio::time::Instant>,
    /// A query that overran its time and is left to finish (see [`Poller::run`]).
    overrunning: Option<tokio::task::JoinHandle<()>>,
}

impl Poller {
    /// How long one query may take before the feed counts as interrupted.
    fn query_timeout(&self) -> Duration {
        self.settings.poll_interval.max(Duration::from_secs(1))
    }

    /// Runs one query on its own task, waiting at most [`query_timeout`](Self::query_timeout).
    ///
    /// A query future dropped half-way would hand its pooled connection back in the
    /// middle of a result (MySQL's protocol then fails on the next user), so a query
    /// that overruns is never cancelled: it is left to finish on its task, the feed
    /// counts as interrupted, and the next query first waits for it.
    async fn run<T: Send + 'static>(
        &mut self,
        query: impl std::future::Future<Output = Result<T, String>> + Send + 'static,
    ) -> Result<T, String> {
        let limit = self.query_timeout();
        if let Some(earlier) = &mut self.overrunning {
            match tokio::time::timeout(limit, earlier).await {
                Ok(_) => self.overrunning = None,
                Err(_) => return Err("an earlier feed query has still not finished".to_owned()),
            }
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let _ = tx.send(query.await);
        });
        match tokio::time::timeout(limit, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err("the feed query's task ended without an answer".to_owned()),
            Err(_) => {
                self.overrunning = Some(task);
                Err(format!("a feed query took longer than {limit:?}"))
            }
        }
    }

    /// The starting position (module docs).
    async fn start_position(&mut self) -> Result<i64, String> {
        let settled = Utc::now() - TimeDelta::from_std(GAP_PATIENCE).unwrap_or_default();
        let store = self.store.clone();
        let query = async move {
            let mut conn = store.conn().await.map_err(|e| e.to_string())?;
            events::table
                .filter(events::created_at.lt(Ts::from_instant(settled)))
                .select(diesel::dsl::max(events::id))
                .get_result::<Option<i64>>(&mut *conn)
                .await
                .map_err(|e| map_error(e).to_string())
        };
        self.run(query).await.map(Option::unwrap_or_default)
    }

    /// One poll: the events after `low`, in id order.
    async fn poll(&mut self) -> Result<Vec<(i64, String, String)>, String> {
        let limit = i64::try_from(self.settings.batch.max(1)).unwrap_or(i64::MAX);
        let (store, low) = (self.store.clone(), self.low);
        let query = async move {
            let mut conn = store.conn().await.map_err(|e| e.to_string())?;
            events::table
                .filter(events::id.gt(low))
                .order(events::id.asc())
                .limit(limit)
                .select((events::id, events::kind, events::subject))
                .load::<(i64, String, String)>(&mut *conn)
                .await
                .map_err(|e| map_error(e).to_string())
        };
        self.run(query).await
    }

    /// Takes in one poll's rows and moves `low` over what is now contiguous.
    fn take(&mut self, rows: Vec<(i64, String, String)>) {
        for (id, kind, subject) in rows {
            if id <= self.low || !self.seen.insert(id) {
                continue;
            }
            match ChangeKind::parse(&kind) {
                Some(kind) => self.buffer.push_back(ChangeEvent::new(kind, subject)),
                // Written by a newer keyroute: evicting by the subject is still right.
                None => self
                    .buffer
                    .push_back(ChangeEvent::new(ChangeKind::KeyRevoked, subject)),
            }
        }
        while let Some(first) = self.seen.iter().next().copied() {
            if Some(first) == self.low.checked_add(1) {
                self.seen.pop_first();
                self.low = first;
                self.gap = None;
                continue;
            }
            match self.gap {
                Some((at, since)) if at == self.low => {
                    if since.elapsed() < GAP_PATIENCE {
                        break;
                    }
                    // Given up on: nothing committed there within the patience.
                    self.low = first.saturating_sub(1);
                    self.gap = None;
                }
                _ => {
                    self.gap = Some((self.low, Instant::now()));
                    break;
                }
            }
        }
    }

    /// Records a failure: retry after a growing back-off; the signal to give, the
    /// first time in an outage.
    fn interrupted(&mut self, reason: String) -> Option<FeedSignal> {
        self.live = false;
        self.buffer.clear();
        self.next_poll = Some(tokio::time::Instant::now() + self.backoff);
        self.backoff = self.backoff.saturating_mul(2).min(MAX_BACKOFF);
        if self.told_down {
            return None;
        }
        self.told_down = true;
        Some(FeedSignal::Interrupted { reason })
    }
}

#[async_trait]
impl ChangeSubscription for Poller {
    async fn next(&mut self) -> FeedSignal {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                return FeedSignal::Change(event);
            }
            // Sleeping is the only await before a query; a dropped future loses
            // nothing but the wait.
            if let Some(due) = self.next_poll {
                tokio::time::sleep_until(due).await;
            }
            if !self.live {
                match self.start_position().await {
                    Ok(low) => {
                        self.low = low;
                        self.seen.clear();
                        self.gap = None;
                        self.live = true;
                        self.told_down = false;
                        self.backoff = Duration::from_millis(100);
                        self.next_poll = None;
                        return FeedSignal::Live;
                    }
                    Err(reason) => {
                        if let Some(signal) = self.interrupted(reason) {
                            return signal;
                        }
                        continue;
                    }
                }
            }
            self.next_poll = Some(tokio::time::Instant::now() + self.settings.poll_interval);
            match self.poll().await {
                Ok(rows) => {
                    let full = rows.len() >= self.settings.batch.max(1);
                    self.take(rows);
                    if full {
                        // More are waiting: read on at once.
                        self.next_poll = None;
                    }
                }
                Err(reason) => {
                    if let Some(signal) = self.interrupted(reason) {
                        return signal;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64) -> (i64, String, String) {
        (id, "key_revoked".to_owned(), format!("key{id}"))
    }

    /// An id that commits after a higher one was read (MySQL's out-of-order commit) is
    /// still delivered, once; the position waits at the gap, then moves past it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_lower_id_committed_late_is_not_skipped() {
        let store = SqlStore::<Marker>::from_pool(
            keyroute_pool::DbPool::lazy(
                "sqlite://:memory:",
                keyroute_pool::PoolSettings::default(),
            )
            .unwrap_or_else(|e| panic!("{e}")),
        );
        let Some(subscription) =
            keyroute_core::ChangeFeed::subscribe(&store, &FeedSettings::default()).await
        else {
            panic!("a feed");
        };
        drop(subscription);
        let mut poller = Poller {
            store,
            settings: FeedSettings::default(),
            low: 0,
            seen: BTreeSet::new(),
            gap: None,
            buffer: VecDeque::new(),
            live: true,
            told_down: false,
            backoff: Duration::from_millis(100),
            next_poll: None,
            overrunning: None,
        };
        poller.take(vec![row(1), row(2), row(4)]);
        assert_eq!(poller.low, 2, "waits below the gap at 3");
        assert_eq!(poller.buffer.len(), 3);
        // The next poll re-reads from 2: 4 again (not delivered twice) and the late 3.
        poller.take(vec![row(3), row(4)]);
        assert_eq!(poller.low, 4);
        let subjects: Vec<String> = poller.buffer.drain(..).map(|e| e.subject).collect();
        assert_eq!(subjects, ["key1", "key2", "key4", "key3"]);
    }
}
