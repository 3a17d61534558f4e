//! Listing every user a page at a time, and counting them.

use std::sync::Arc;

use keyroute_core::{Environment, Store, UserId};

use super::{key, t0, user};

/// Every user, with keys and without, comes back in id order, page by page, each
/// exactly once; a page may start after an id no user has; the count agrees.
pub(crate) async fn list_users_pages_through_everyone<S: Store>(store: Arc<S>) {
    assert_eq!(store.count_users().await.unwrap(), 0);
    assert!(store.list_users(None, 10).await.unwrap().is_empty());

    let without: Vec<_> = ["c", "a", "e", "b", "d"].iter().map(|n| user(n)).collect();
    store.import_users(&without).await.unwrap();
    for name in ["y", "x"] {
        let u = user(name);
        store
            .create_user(&u, &[key(Some(&u), Environment::LIVE, t0())], &[])
            .await
            .unwrap();
    }
    assert_eq!(store.count_users().await.unwrap(), 7);

    let mut seen = Vec::new();
    let mut after: Option<UserId> = None;
    loop {
        let page = store.list_users(after.as_ref(), 2).await.unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        seen.extend(page.into_iter().map(|u| u.user_name));
    }
    assert_eq!(seen, ["a", "b", "c", "d", "e", "x", "y"]);

    let from_gap = store
        .list_users(Some(&UserId::new("user-bb").unwrap()), 2)
        .await
        .unwrap();
    let names: Vec<_> = from_gap.iter().map(|u| u.user_name.as_str()).collect();
    assert_eq!(names, ["c", "d"]);
    assert_eq!(
        store.list_users(None, 1).await.unwrap()[0],
        user("a"),
        "a listed user is the stored user, every field"
    );
    assert!(store.list_users(None, 0).await.unwrap().is_empty());
}
