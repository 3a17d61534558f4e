//! The conformance suite on SQLite (a temporary file per case).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

#[macro_use]
mod conformance;

conformance_suite!(async {
    let db = keyroute_testing::sqlite().expect("temporary SQLite database");
    let store = db.store().await.expect("connected and migrated store");
    (store, db)
});

mod removed_file {
    use keyroute_core::{ApiKey, ApiKeyStore, Environment, ErrorKind, KeyHash, KeyId, KeyType};
    use keyroute_store::SqliteStore;

    fn a_key() -> ApiKey {
        ApiKey::new(
            KeyId::random(),
            KeyType::SECRET,
            Environment::TEST,
            KeyHash::of(KeyId::random().as_str()),
            "sk_test_…abcd",
            chrono::Utc::now(),
        )
    }

    fn remove_database(path: &str) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
    }

    /// A write after the database file (and its -wal/-shm) was deleted under a running
    /// pool is `Unavailable`, saying the file was removed, never a lost `Ok`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_to_a_removed_file_are_unavailable() {
        let db = keyroute_testing::sqlite().unwrap();
        let store = db.store().await.unwrap();
        store.store_all(&[a_key()], &[]).await.unwrap();
        remove_database(db.url().expose_secret());
        let err = store.store_all(&[a_key()], &[]).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        assert!(err.to_string().contains("removed"), "{err}");
        let err = store.api_key_exists(&KeyHash::of("x")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    }

    /// A database file replaced by another (a restored copy) is `Unavailable` too:
    /// the pool's connections still hold the old file.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_to_a_replaced_file_are_unavailable() {
        let db = keyroute_testing::sqlite().unwrap();
        let path = db.url().expose_secret().to_owned();
        let store = db.store().await.unwrap();
        store.store_all(&[a_key()], &[]).await.unwrap();
        let copy = format!("{path}.copy");
        std::fs::copy(&path, &copy).unwrap();
        remove_database(&path);
        std::fs::rename(&copy, &path).unwrap();
        let err = store.store_all(&[a_key()], &[]).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        assert!(err.to_string().contains("replaced"), "{err}");
    }

    /// In-memory databases have no file to watch and keep working.
    #[tokio::test]
    async fn in_memory_databases_are_not_watched() {
        let store = SqliteStore::connect(":memory:").await.unwrap();
        store.init_schema().await.unwrap();
        store.store_all(&[a_key()], &[]).await.unwrap();
        let store = SqliteStore::connect("sqlite://:memory:").await.unwrap();
        store.init_schema().await.unwrap();
        store.store_all(&[a_key()], &[]).await.unwrap();
    }
}
