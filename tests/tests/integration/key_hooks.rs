//! Key hooks: every key event reaches the app's hooks in order, off the request path.
//! A hook that never finishes or panics neither blocks nor fails a request, and the
//! hooks after it still hear of every event.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use keyroute::hooks::{KeyEvent, KeyHook};
use keyroute::keys::{KeyHash, KeyUpdate, LeakReport, LeakResponse, LeakVerdict, Operator};
use keyroute::store::{MemoryStore, Sqlite};
use keyroute::{
    Config, Environment, KeyRequest, KeyType, Keyroute, KeyrouteBuilder, NewUser, Scopes,
};
use tokio::sync::{Notify, mpsc};

fn config(dir: &Path) -> Config {
    Config::from_toml_str(&format!(
        "[connections]\nlive = {:?}\ntest = {:?}\n",
        dir.join("live.db"),
        dir.join("test.db")
    ))
    .unwrap()
}

/// A builder over a memory store, with SQLite files in `dir` to route to.
fn builder(dir: &Path) -> KeyrouteBuilder<Sqlite> {
    Keyroute::<Sqlite>::builder()
        .config(config(dir))
        .shared_store(Arc::new(MemoryStore::new()))
}

/// A hook that passes on what it sees, and where it passes it.
struct Recorder(mpsc::UnboundedSender<(&'static str, String)>);

#[async_trait::async_trait]
impl KeyHook for Recorder {
    async fn on_event(&self, event: KeyEvent) {
        let _ = self.0.send(seen(&event));
    }
}

fn recorder() -> (
    Arc<Recorder>,
    mpsc::UnboundedReceiver<(&'static str, String)>,
) {
    let (tx, events) = mpsc::unbounded_channel();
    (Arc::new(Recorder(tx)), events)
}

/// What a hook saw: the kind and the key id of each event.
fn seen(event: &KeyEvent) -> (&'static str, String) {
    let kind = match event {
        KeyEvent::Created(_) => "created",
        KeyEvent::Revoked(_) => "revoked",
        KeyEvent::Rolled(_) => "rolled",
        KeyEvent::Updated { .. } => "updated",
        KeyEvent::Disabled(_) => "disabled",
        KeyEvent::Leaked(_) => "leaked",
        _ => "other",
    };
    (kind, event.key().id.to_string())
}

/// The next `n` events a hook passed on, or a failure after a generous guard.
async fn next(
    events: &mut mpsc::UnboundedReceiver<(&'static str, String)>,
    n: usize,
) -> Vec<(&'static str, String)> {
    let mut got = Vec::new();
    for _ in 0..n {
        // A guard against hanging, not a speed claim.
        let event = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .expect("the hook heard of the event")
            .unwrap();
        got.push(event);
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_hear_every_event_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (recorder, mut events) = recorder();
    let app = builder(dir.path())
        .key_hook(recorder)
        .build()
        .await
        .unwrap();
    app.spawn_background().unwrap();
    let keys = app.keys();

    let ada = keys.register_user(NewUser::named("ada")).await.unwrap();
    let registered: Vec<String> = ada.keys.iter().map(|k| k.key.id.to_string()).collect();
    let got = next(&mut events, registered.len()).await;
    assert_eq!(
        got.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        vec!["created"; registered.len()]
    );
    assert_eq!(
        got.iter().map(|(_, id)| id.clone()).collect::<Vec<_>>(),
        registered
    );

    let issued = keys
        .issue_key(
            KeyRequest::new(KeyType::SECRET, Environment::TEST).for_user(ada.user.id.clone()),
        )
        .await
        .unwrap();
    let rolled = keys.roll(&issued.key.id, None).await.unwrap().unwrap();
    let new_id = rolled.issued.key.id.clone();
    keys.update_key(&new_id, &KeyUpdate::new().name(Some("ci".into())))
        .await
        .unwrap();
    keys.update_key(&new_id, &KeyUpdate::new().enabled(false))
        .await
        .unwrap();
    // An update that changes nothing is no event.
    keys.update_key(&new_id, &KeyUpdate::new().enabled(false))
        .await
        .unwrap();
    keys.update_key(&new_id, &KeyUpdate::new().enabled(true))
        .await
        .unwrap();
    keys.revoke(&new_id).await.unwrap();
    let got = next(&mut events, 7).await;
    assert_eq!(
        got,
        [
            ("created", issued.key.id.to_string()),
            ("rolled", issued.key.id.to_string()),
            ("created", new_id.to_string()),
            ("updated", new_id.to_string()),
            ("disabled", new_id.to_string()),
            ("updated", new_id.to_string()),
            ("revoked", new_id.to_string()),
        ]
    );
}

/// A leaked key is revoked and reported to the hooks (to notify its owner).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaked_key_is_an_event() {
    let dir = tempfile::tempdir().unwrap();
    let (recorder, mut events) = recorder();
    let app = builder(dir.path())
        .key_hook(recorder)
        .build()
        .await
        .unwrap();
    app.spawn_background().unwrap();
    let keys = app.keys();
    let ada = keys.register_user(NewUser::named("ada")).await.unwrap();
    let leaked = &ada.keys[0];
    next(&mut events, ada.keys.len()).await;
    let report = LeakReport::new(leaked.plaintext.clone(), "github", None);
    let verdict = keys
        .acting_as(Operator::new("scanner").unwrap())
        .report_leak(&report, LeakResponse::Revoke)
        .await
        .unwrap();
    assert!(matches!(verdict, LeakVerdict::Revoked(_)));
    let id = leaked.key.id.to_string();
    assert_eq!(
        next(&mut events, 2).await,
        [("revoked", id.clone()), ("leaked", id)]
    );
}

/// An update's event names what changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_events_name_the_changed_fields() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, mut events) = mpsc::unbounded_channel();
    let app = builder(dir.path())
        .on_key_event(move |event| {
            let tx = tx.clone();
            async move {
                if let KeyEvent::Updated { key, changed } = event {
                    let _ = tx.send((key.name.clone(), changed));
                }
            }
        })
        .build()
        .await
        .unwrap();
    app.spawn_background().unwrap();
    let keys = app.keys();
    let ada = keys.register_user(NewUser::named("ada")).await.unwrap();
    let id = ada.keys[0].key.id.clone();
    let update = KeyUpdate::new()
        .name(Some("laptop".into()))
        .scopes(Scopes::parse(["orders:read"]).unwrap());
    keys.update_key(&id, &update).await.unwrap();
    let (name, changed) = tokio::time::timeout(Duration::from_secs(30), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(name.as_deref(), Some("laptop"));
    assert_eq!(changed, ["name", "scopes"]);
}

/// A stuck hook: while it holds an event, requests go on (a hook awaited on the request
/// path would hang them for good).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_hook_never_blocks_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let entered = Arc::new(Notify::new());
    let app = builder(dir.path())
        .on_key_event({
            let entered = Arc::clone(&entered);
            move |_| {
                let entered = Arc::clone(&entered);
                async move {
                    entered.notify_one();
                    std::future::pending::<()>().await;
                }
            }
        })
        .build()
        .await
        .unwrap();
    app.spawn_background().unwrap();
    let keys = app.keys();
    let ada = keys.register_user(NewUser::named("ada")).await.unwrap();
    entered.notified().await;
    // A guard against hanging, not a speed claim.
    tokio::time::timeout(Duration::from_secs(30), async {
        for _ in 0..5 {
            let issued = keys
                .issue_key(
                    KeyRequest::new(KeyType::SECRET, Environment::LIVE)
                        .for_user(ada.user.id.clone()),
                )
                .await
                .unwrap();
            keys.revoke(&issued.key.id).await.unwrap();
        }
    })
    .await
    .expect("requests finish while the hook is stuck");
}

/// Beside a hook that never returns and one that panics, a third hook still hears of
/// every event, in order, as the first is given up on after its time limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_hook_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let (recorder, mut events) = recorder();
    let app = builder(dir.path())
        .hook_time_limit(Duration::from_millis(50))
        .on_key_event(|_| std::future::pending::<()>())
        .on_key_event(|event| async move {
            if matches!(event, KeyEvent::Created(_)) {
                panic!("a hook that fails");
            }
        })
        .key_hook(recorder)
        .build()
        .await
        .unwrap();
    app.spawn_background().unwrap();
    let keys = app.keys();
    let ada = keys.register_user(NewUser::named("ada")).await.unwrap();
    let mut expected: Vec<(&'static str, String)> = ada
        .keys
        .iter()
        .map(|k| ("created", k.key.id.to_string()))
        .collect();
    for _ in 0..3 {
        let issued = keys
            .issue_key(
                KeyRequest::new(KeyType::SECRET, Environment::LIVE).for_user(ada.user.id.clone()),
            )
            .await
            .unwrap();
        assert!(
            keys.store()
                .api_key_exists(&KeyHash::of(issued.plaintext.expose_secret()))
                .await
                .unwrap()
        );
        keys.revoke(&issued.key.id).await.unwrap();
        expected.push(("created", issued.key.id.to_string()));
        expected.push(("revoked", issued.key.id.to_string()));
    }
    assert_eq!(next(&mut events, expected.len()).await, expected);
}

/// With `background()` not running, events wait in a bounded queue; past it they are
/// dropped (and counted in a warning), and requests never wait for room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_events_not_requests() {
    let dir = tempfile::tempdir().unwrap();
    let (recorder, mut events) = recorder();
    let app = builder(dir.path())
        .key_hook(recorder)
        .build()
        .await
        .unwrap();
    let keys = app.keys();
    let ada = keys.register_user(NewUser::named("ada")).await.unwrap();
    let extra = keyroute::hooks::HOOK_QUEUE + 10;
    let mut issued = Vec::new();
    for _ in 0..extra {
        let key = keys
            .issue_key(
                KeyRequest::new(KeyType::SECRET, Environment::LIVE).for_user(ada.user.id.clone()),
            )
            .await
            .unwrap();
        issued.push(key.key.id.to_string());
        keys.revoke(&key.key.id).await.unwrap(); // stays under max_keys_per_user
    }
    assert_eq!(issued.len(), extra, "every request succeeded");
    app.spawn_background().unwrap();
    let got = next(&mut events, keyroute::hooks::HOOK_QUEUE).await;
    assert_eq!(
        got[0].1,
        ada.keys[0].key.id.to_string(),
        "the oldest events are kept"
    );
    // Nothing beyond the queue's capacity arrives.
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(events.try_recv().is_err());
}
