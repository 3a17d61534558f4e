//! What the database side counts, read on connections of our own (application name
//! [`MONITOR`], so they are never counted as keyroute's):
//!
//! - `pg_stat_database`: transactions (`xact_commit` + `xact_rollback`) and rows
//!   (`tup_returned`, `tup_fetched`, `tup_updated`) of the run's database. A backend
//!   publishes its counters at most once a second while it works and within 10 s of
//!   going idle, so windows are long and start 10 s after a burst. A backend that runs
//!   only empty queries (the feed's check of its `LISTEN` connection) or `SELECT 1`
//!   keeps their transactions to itself until it has other statistics to publish:
//!   each window boundary notifies the listeners ([`Monitor::flush_listeners`]),
//!   which gives them some. The view also counts autovacuum's transactions; the
//!   snapshot counts its runs (`autovacuum_count + autoanalyze_count`).
//! - `pg_stat_statements` (loaded by the run): every statement by its normalized
//!   text, counted as it finishes, classified by what it is for ([`Class`]). It does
//!   not count empty queries, nor `DEALLOCATE`.
//! - `pg_stat_activity`: the connections open on the run's database, by application.
//! - PgBouncer's `SHOW STATS` and `SHOW POOLS` for the database, when one is in front.
//! - A `LISTEN` on keyroute's channel: the notifications one listener receives.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use keyroute::store::{DatabaseUrl, POSTGRES_FEED_APPLICATION_NAME, POSTGRES_FEED_CHANNEL};
use keyroute_testing::TestPgBouncer;
use tokio_postgres::{AsyncMessage, NoTls, SimpleQueryMessage};

use super::{Context, Failure, Outcome};

/// The application name of the run's own connections.
pub(crate) const MONITOR: &str = "capacity-monitor";

/// The start of the payloads the run notifies (keyroute ignores them: they are no
/// change event); not counted as feed traffic.
const MARKER: &str = "capacity-";

/// What a statement is for, by its normalized text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Class {
    /// The resolver's lookup of a key by hash: a cache miss.
    Lookup,
    /// A batch of last-used stamps: its rows locked (`SELECT ... FOR UPDATE SKIP
    /// LOCKED`), then stamped (`UPDATE ... last_used_at`).
    LastUsed,
    /// The pool's checkout check (`SELECT 1`).
    Check,
    /// `BEGIN`, `COMMIT`, `ROLLBACK`, `SAVEPOINT`, `RELEASE`.
    Transaction,
    /// What a unit behind a transaction pooler resets (`RESET`, `DEALLOCATE`).
    Reset,
    /// `pg_notify`: a change event published.
    Notify,
    /// Anything else.
    Other,
    /// The monitor's own (its `NOTIFY` markers, its reads of autovacuum's counts):
    /// never counted as keyroute's.
    Ours,
}

impl Class {
    /// The class of the statement whose normalized text is `query`.
    pub(crate) fn of(query: &str) -> Class {
        let q = query.trim_start().to_ascii_uppercase();
        let starts = |words: &[&str]| words.iter().any(|w| q.starts_with(w));
        if q.contains("'CAPACITY-") || q.contains("PG_STAT_ALL_TABLES") {
            Class::Ours
        } else if q == "SELECT $1" || q == "SELECT 1" {
            Class::Check
        } else if q.contains("PG_NOTIFY") {
            Class::Notify
        } else if q.starts_with("SELECT") && q.contains("\"HASH\" = $") {
            Class::Lookup
        } else if (q.starts_with("UPDATE") && q.contains("LAST_USED_AT"))
            || (q.starts_with("SELECT") && q.contains("SKIP LOCKED"))
        {
            Class::LastUsed
        } else if starts(&[
            "BEGIN",
            "COMMIT",
            "ROLLBACK",
            "SAVEPOINT",
            "RELEASE",
            "START",
        ]) {
            Class::Transaction
        } else if starts(&["RESET", "DEALLOCATE"]) {
            Class::Reset
        } else {
            Class::Other
        }
    }

    /// The class's name, as printed.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Class::Lookup => "key lookups (cache misses)",
            Class::LastUsed => "last-used batches (lock + UPDATE statements)",
            Class::Check => "pool checkout checks (SELECT 1)",
            Class::Transaction => "BEGIN/COMMIT/SAVEPOINT/RELEASE",
            Class::Reset => "unit resets (RESET/DEALLOCATE)",
            Class::Notify => "pg_notify (change events)",
            Class::Other => "other statements",
            Class::Ours => "the monitor's own",
        }
    }
}

/// The counters at one moment.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    at: Instant,
    database: BTreeMap<&'static str, i64>,
    statements: BTreeMap<String, i64>,
    bouncer: BTreeMap<&'static str, i64>,
    notifications: (u64, u64),
}

/// What changed between two snapshots.
#[derive(Debug, Clone)]
pub(crate) struct Delta {
    /// The seconds between them.
    pub(crate) seconds: f64,
    /// `pg_stat_database` counters (`xacts` is commits plus rollbacks).
    pub(crate) database: BTreeMap<&'static str, i64>,
    /// `pg_stat_statements` calls by class.
    pub(crate) classes: BTreeMap<Class, i64>,
    /// The `Other` statements, most called first.
    pub(crate) others: Vec<(String, i64)>,
    /// One statement's text per class.
    pub(crate) examples: BTreeMap<Class, String>,
    /// PgBouncer's `total_xact_count` and `total_query_count`, when in front.
    pub(crate) bouncer: BTreeMap<&'static str, i64>,
    /// Notifications our listener received, and their payload bytes.
    pub(crate) notifications: (u64, u64),
}

impl Delta {
    /// Per second.
    pub(crate) fn rate(&self, count: i64) -> f64 {
        count as f64 / self.seconds.max(1e-9)
    }

    /// A `pg_stat_database` counter's change (0 when absent).
    pub(crate) fn db(&self, counter: &str) -> i64 {
        self.database.get(counter).copied().unwrap_or(0)
    }

    /// Statements of `class` (0 when none).
    pub(crate) fn class(&self, class: Class) -> i64 {
        self.classes.get(&class).copied().unwrap_or(0)
    }

    /// Every statement `pg_stat_statements` counted but the monitor's own.
    pub(crate) fn statements(&self) -> i64 {
        self.classes
            .iter()
            .filter(|(class, _)| **class != Class::Ours)
            .map(|(_, calls)| calls)
            .sum()
    }
}

impl Snapshot {
    /// What changed from `self` to `later`.
    pub(crate) fn delta(&self, later: &Snapshot) -> Delta {
        let diff = |a: &BTreeMap<&'static str, i64>, b: &BTreeMap<&'static str, i64>| {
            b.iter()
                .map(|(k, v)| (*k, v - a.get(k).copied().unwrap_or(0)))
                .collect()
        };
        let mut classes = BTreeMap::new();
        let mut others = Vec::new();
        let mut examples = BTreeMap::new();
        for (query, calls) in &later.statements {
            let calls = calls - self.statements.get(query).copied().unwrap_or(0);
            if calls == 0 {
                continue;
            }
            let class = Class::of(query);
            *classes.entry(class).or_insert(0) += calls;
            examples.entry(class).or_insert_with(|| query.clone());
            if class == Class::Other {
                others.push((query.clone(), calls));
            }
        }
        others.sort_by_key(|other| std::cmp::Reverse(other.1));
        Delta {
            seconds: later.at.duration_since(self.at).as_secs_f64(),
            database: diff(&self.database, &later.database),
            classes,
            others,
            examples,
            bouncer: diff(&self.bouncer, &later.bouncer),
            notifications: (
                later.notifications.0 - self.notifications.0,
                later.notifications.1 - self.notifications.1,
            ),
        }
    }
}

/// The connections open on the run's database at one moment.
#[derive(Debug, Clone, Default)]
pub(crate) struct Connections {
    /// keyroute's `LISTEN` connections.
    pub(crate) listeners: i64,
    /// Every other client backend but ours, by application name and state (with
    /// what it waits on, if it waits).
    pub(crate) others: BTreeMap<(String, String), i64>,
    /// PgBouncer's `SHOW POOLS` row for the database, when one is in front.
    pub(crate) pools: BTreeMap<String, String>,
}

impl Connections {
    /// The other client backends, in total.
    pub(crate) fn pooled(&self) -> i64 {
        self.others.values().sum()
    }

    /// A `SHOW POOLS` column summed over `columns` (0 when absent).
    pub(crate) fn pool_sum(&self, columns: &[&str]) -> i64 {
        columns
            .iter()
            .filter_map(|c| self.pools.get(*c)?.parse::<i64>().ok())
            .sum()
    }
}

/// Reads the counters of one database.
pub(crate) struct Monitor<'a> {
    client: tokio_postgres::Client,
    database: String,
    bouncer: Option<&'a TestPgBouncer>,
    /// Our `LISTEN` connection, on the database itself.
    listening: tokio_postgres::Client,
    notifications: Arc<(AtomicU64, AtomicU64)>,
    driver: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Monitor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

impl Drop for Monitor<'_> {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// A connection to `url` as [`MONITOR`], driven on a task of its own.
pub(crate) async fn connect(url: &DatabaseUrl) -> Outcome<tokio_postgres::Client> {
    let mut config: tokio_postgres::Config = url
        .expose_secret()
        .parse()
        .context("reading a database URL")?;
    config.application_name(MONITOR);
    let (client, connection) = config
        .connect(NoTls)
        .await
        .context("connecting to PostgreSQL directly")?;
    tokio::spawn(connection);
    Ok(client)
}

/// The text rows of `sql`, by the simple query protocol.
pub(crate) async fn rows(
    client: &tokio_postgres::Client,
    sql: &str,
) -> Outcome<Vec<Vec<Option<String>>>> {
    let messages = client.simple_query(sql).await.context(sql)?;
    Ok(messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        })
        .collect())
}

fn number(value: Option<&Option<String>>) -> i64 {
    value
        .and_then(|v| v.as_deref())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

impl<'a> Monitor<'a> {
    /// A monitor of `database`: counters read on `admin` (the server's administrative
    /// database, directly), notifications received on `direct` (the database
    /// itself, directly), PgBouncer's figures from `bouncer`.
    pub(crate) async fn new(
        admin: &DatabaseUrl,
        direct: &DatabaseUrl,
        database: &str,
        bouncer: Option<&'a TestPgBouncer>,
    ) -> Outcome<Self> {
        let client = connect(admin).await?;
        let (listening, mut connection) = connect_listening(direct).await?;
        let notifications = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
        let counted = Arc::clone(&notifications);
        let driver = tokio::spawn(async move {
            while let Some(Ok(message)) =
                std::future::poll_fn(|cx| connection.poll_message(cx)).await
            {
                if let AsyncMessage::Notification(n) = message
                    && !n.payload().starts_with(MARKER)
                {
                    counted.0.fetch_add(1, Ordering::Relaxed);
                    counted
                        .1
                        .fetch_add(n.payload().len() as u64, Ordering::Relaxed);
                }
            }
        });
        listening
            .batch_execute(&format!("LISTEN {POSTGRES_FEED_CHANNEL}"))
            .await
            .context("our LISTEN")?;
        Ok(Self {
            client,
            listening,
            database: database.to_owned(),
            bouncer,
            notifications,
            driver,
        })
    }

    /// Makes every listener of the database publish the transactions it counted:
    /// PostgreSQL 15 keeps an empty query's transaction in the backend until it has
    /// other statistics to report, which receiving a notification gives it (on its
    /// next query, within one `feed_poll_interval`, if a second has passed since its
    /// last report). Notifies a payload keyroute ignores, and waits `settle`.
    pub(crate) async fn flush_listeners(&self, settle: std::time::Duration) -> Outcome<()> {
        self.listening
            .batch_execute(&format!("NOTIFY {POSTGRES_FEED_CHANNEL}, '{MARKER}flush'"))
            .await
            .context("notifying the listeners")?;
        tokio::time::sleep(settle).await;
        Ok(())
    }

    /// Keys with a last-used stamp and keys in all: working ones, then revoked ones.
    pub(crate) async fn stamped(&self) -> Outcome<[i64; 4]> {
        let found = rows(
            &self.listening,
            "SELECT count(last_used_at) FILTER (WHERE cancelled_at IS NULL), \
             count(*) FILTER (WHERE cancelled_at IS NULL), \
             count(last_used_at) FILTER (WHERE cancelled_at IS NOT NULL), \
             count(*) FILTER (WHERE cancelled_at IS NOT NULL) FROM keyroute_api_keys",
        )
        .await?;
        let row = found.first();
        Ok([0, 1, 2, 3].map(|i| number(row.and_then(|r| r.get(i)))))
    }

    /// The counters now.
    pub(crate) async fn snapshot(&self) -> Outcome<Snapshot> {
        let db = &self.database;
        let stats = rows(
            &self.client,
            &format!(
                "SELECT xact_commit + xact_rollback, xact_rollback, deadlocks, tup_returned, \
                 tup_fetched, tup_updated, tup_inserted FROM pg_stat_database \
                 WHERE datname = '{db}'"
            ),
        )
        .await?;
        let row = stats
            .first()
            .ok_or_else(|| Failure::new(format!("no pg_stat_database row for {db}")))?;
        let names = [
            "xacts",
            "rollbacks",
            "deadlocks",
            "tup_returned",
            "tup_fetched",
            "tup_updated",
            "tup_inserted",
        ];
        let mut database: BTreeMap<&'static str, i64> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (*n, number(row.get(i))))
            .collect();
        // On the database itself (the view is per database): one transaction of ours.
        let autovacuum = rows(
            &self.listening,
            "SELECT coalesce(sum(autovacuum_count + autoanalyze_count), 0) FROM pg_stat_all_tables",
        )
        .await?;
        database.insert(
            "autovacuum",
            number(autovacuum.first().and_then(|r| r.first())),
        );
        let mut statements = BTreeMap::new();
        for row in rows(
            &self.client,
            &format!(
                "SELECT query, sum(calls) FROM pg_stat_statements s JOIN pg_database d \
                 ON d.oid = s.dbid WHERE d.datname = '{db}' GROUP BY query"
            ),
        )
        .await?
        {
            if let Some(Some(query)) = row.first() {
                statements.insert(query.clone(), number(row.get(1)));
            }
        }
        let mut bouncer = BTreeMap::new();
        if let Some(pgb) = self.bouncer {
            let stats = pgb.show("STATS").await.context("PgBouncer's SHOW STATS")?;
            if let Some(row) = stats.iter().find(|r| r.get("database") == Some(db)) {
                for column in ["total_xact_count", "total_query_count"] {
                    let value = row.get(column).and_then(|v| v.parse().ok()).unwrap_or(0);
                    bouncer.insert(column, value);
                }
            }
        }
        let (count, bytes) = &*self.notifications;
        Ok(Snapshot {
            at: Instant::now(),
            database,
            statements,
            bouncer,
            notifications: (count.load(Ordering::Relaxed), bytes.load(Ordering::Relaxed)),
        })
    }

    /// The connections open on the database now.
    pub(crate) async fn connections(&self) -> Outcome<Connections> {
        let db = &self.database;
        let mut seen = Connections::default();
        for row in rows(
            &self.client,
            &format!(
                "SELECT coalesce(application_name, ''), coalesce(state, '') \
                 || CASE WHEN state = 'active' AND wait_event IS NOT NULL \
                 THEN ' waiting on ' || wait_event_type || ':' || wait_event ELSE '' END, \
                 count(*) FROM pg_stat_activity WHERE datname = '{db}' \
                 AND backend_type = 'client backend' GROUP BY 1, 2"
            ),
        )
        .await?
        {
            let text = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
            let (application, state, count) = (text(0), text(1), number(row.get(2)));
            if application == POSTGRES_FEED_APPLICATION_NAME {
                seen.listeners += count;
            } else if application != MONITOR {
                *seen.others.entry((application, state)).or_insert(0) += count;
            }
        }
        if let Some(pgb) = self.bouncer {
            let pools = pgb.show("POOLS").await.context("PgBouncer's SHOW POOLS")?;
            if let Some(row) = pools.into_iter().find(|r| r.get("database") == Some(db)) {
                seen.pools = row;
            }
        }
        Ok(seen)
    }
}

/// A connection to `url` as [`MONITOR`] whose messages (notifications) the caller
/// drives.
async fn connect_listening(
    url: &DatabaseUrl,
) -> Outcome<(
    tokio_postgres::Client,
    tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
)> {
    let mut config: tokio_postgres::Config = url
        .expose_secret()
        .parse()
        .context("reading a database URL")?;
    config.application_name(MONITOR);
    config
        .connect(NoTls)
        .await
        .context("opening our LISTEN connection")
}
