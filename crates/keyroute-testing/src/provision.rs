//! Where a test's databases come from. On a backend that can copy a database
//! (PostgreSQL's `CREATE DATABASE .. TEMPLATE`), the first app of a binary migrates a
//! template (keyroute's schema and the app's migrations) and every database after is
//! a copy; a few copies are kept ready, made in the background on the harness's
//! runtime, because a copy costs the server about 100 ms and a further test should
//! not wait for it. Elsewhere (SQLite, MariaDB) each database is made and migrated on
//! its own. Either way a test's databases are made concurrently.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tokio::sync::OnceCell;
use tokio::task::JoinSet;

use crate::migrations::AppMigrations;
use crate::{HarnessError, TestAppError, TestBackend, TestDatabase};

/// Copies kept ready per template: two apps' worth of live and test databases.
const SPARES: usize = 4;

/// A fresh database for each name, made concurrently.
pub(crate) async fn make_databases<B: TestBackend>(
    names: Vec<String>,
    migrations: Option<AppMigrations>,
) -> Result<BTreeMap<String, TestDatabase<B>>, TestAppError> {
    let template = match B::COPIES {
        true => Some(template::<B>(migrations.as_ref()).await?),
        false => None,
    };
    let mut made = JoinSet::new();
    for name in names {
        let template = template.clone();
        let migrations = migrations.clone();
        made.spawn(async move {
            let db = match template {
                Some(template) => template.take().await?,
                None => {
                    let db = B::fresh().await?;
                    if let Some(migrations) = migrations {
                        migrations.apply(&db, &name).await?;
                    }
                    db
                }
            };
            Ok::<_, TestAppError>((name, db))
        });
    }
    let mut databases = BTreeMap::new();
    while let Some(result) = made.join_next().await {
        let (name, db) = result.map_err(|e| HarnessError::Database(e.to_string()))??;
        databases.insert(name, db);
    }
    Ok(databases)
}

/// A migrated database to copy, and copies of it made ahead of need.
struct Template<B: TestBackend> {
    db: TestDatabase<B>,
    spares: Mutex<Vec<TestDatabase<B>>>,
    filling: AtomicBool,
}

impl<B: TestBackend> Template<B> {
    /// A copy: a spare when one is ready, otherwise made now. Either way the spares
    /// are topped up in the background, after this copy (not competing with it).
    async fn take(self: Arc<Self>) -> Result<TestDatabase<B>, HarnessError> {
        let spare = self
            .spares
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let db = match spare {
            Some(db) => db,
            None => self.copy().await?,
        };
        self.refill();
        Ok(db)
    }

    async fn copy(&self) -> Result<TestDatabase<B>, HarnessError> {
        match B::copy_of(&self.db) {
            Some(copy) => copy.await,
            None => B::fresh().await,
        }
    }

    /// Starts topping up the spares on the harness's runtime (which outlives every
    /// test's), unless that is under way. A failed copy stops the top-up; the next
    /// `take` makes its own copy and reports the error.
    fn refill(self: Arc<Self>) {
        if self.filling.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(harness) = crate::server::harness() else {
            self.filling.store(false, Ordering::Release);
            return;
        };
        harness.runtime.spawn(async move {
            loop {
                let have = self
                    .spares
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .len();
                if have >= SPARES {
                    break;
                }
                match self.copy().await {
                    Ok(db) => self
                        .spares
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(db),
                    Err(_) => break,
                }
            }
            self.filling.store(false, Ordering::Release);
        });
    }
}

type Templates = Mutex<HashMap<(&'static str, Option<PathBuf>), Arc<dyn Any + Send + Sync>>>;

/// This test binary's migrated template for `B` and `migrations`, made by the first
/// test that asks (keyroute's schema and the app's migrations applied) and shared by
/// the rest. A failure is not kept: each test that asks reports it.
async fn template<B: TestBackend>(
    migrations: Option<&AppMigrations>,
) -> Result<Arc<Template<B>>, TestAppError> {
    static TEMPLATES: OnceLock<Templates> = OnceLock::new();
    let key = (B::NAME, migrations.map(|m| m.dir().to_path_buf()));
    let cell: Arc<OnceCell<Arc<Template<B>>>> = {
        let mut map = TEMPLATES
            .get_or_init(Templates::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = map
            .entry(key)
            .or_insert_with(|| Arc::new(OnceCell::<Arc<Template<B>>>::new()));
        match Arc::clone(entry).downcast() {
            Ok(cell) => cell,
            // The key holds B::NAME, so another backend's cell is never found here.
            Err(_) => Arc::new(OnceCell::new()),
        }
    };
    let template = cell
        .get_or_try_init(|| async {
            let db = B::fresh().await?;
            // The store's schema in the template, so a copy needs no migrating; the
            // store (and its pool) is closed before any copy is made.
            drop(db.store().await?);
            if let Some(migrations) = migrations {
                migrations.apply(&db, "template").await?;
            }
            Ok::<_, TestAppError>(Arc::new(Template {
                db,
                spares: Mutex::new(Vec::new()),
                filling: AtomicBool::new(false),
            }))
        })
        .await?;
    Ok(Arc::clone(template))
}
