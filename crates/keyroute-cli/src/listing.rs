//! `keyroute users list`: every user, with keys or without (or, with
//! `--without-keys`, only those `backfill` would key), in id order, a page at a time.
//! A page says how many it showed, of how many, and the exact command for the next
//! one; `--all` pages through everyone.

use keyroute::store::Backend;
use keyroute::store::UserStore;
use keyroute::{Keyroute, User, UserId};
use serde_json::json;

use crate::args;
use crate::keys::user_json;
use crate::output::{CliError, Out, shell_word, when};

/// The page size `--all` reads with, at least: fewer, larger reads.
const ALL_PAGE: usize = 1000;

/// Which users to list, from the command line.
#[derive(Debug)]
pub(crate) struct Page {
    /// The most users on one page (at least 1; clap checks).
    pub(crate) limit: u32,
    /// Start after this user id.
    pub(crate) after: Option<String>,
    /// Every page, not one.
    pub(crate) all: bool,
    /// Only users who own no key.
    pub(crate) without_keys: bool,
}

async fn read<S: UserStore + ?Sized>(
    store: &S,
    without_keys: bool,
    after: Option<&UserId>,
    limit: usize,
) -> Result<Vec<User>, CliError> {
    Ok(if without_keys {
        store.users_missing_keys(after, limit).await?
    } else {
        store.list_users(after, limit).await?
    })
}

/// `keyroute users list [--limit N] [--after ID] [--all] [--without-keys]`.
pub(crate) async fn users<B: Backend>(
    keyroute: &Keyroute<B>,
    page: Page,
    out: Out,
) -> Result<(), CliError> {
    let limit = usize::try_from(page.limit).unwrap_or(usize::MAX).max(1);
    let read_size = if page.all { limit.max(ALL_PAGE) } else { limit };
    let first_page = page.after.is_none();
    let mut after = page
        .after
        .map(|id| {
            UserId::new(&id).map_err(|e| {
                args::bad_value("after", &id, e, "give the id the previous page ended with")
            })
        })
        .transpose()?;
    let store = keyroute.store();
    let mut users: Vec<User> = Vec::new();
    // One more than a page is read, to know whether another page follows.
    let next_after = loop {
        let mut batch = read(
            store,
            page.without_keys,
            after.as_ref(),
            read_size.saturating_add(1),
        )
        .await?;
        let more = batch.len() > read_size;
        batch.truncate(read_size);
        if let Some(last) = batch.last() {
            after = Some(last.id.clone());
        }
        users.extend(batch);
        if !more {
            break None;
        }
        if !page.all {
            break after.clone();
        }
    };
    let total = if page.without_keys {
        None
    } else {
        Some(store.count_users().await?)
    };
    let next_command = next_after.as_ref().map(|id| {
        let filter = if page.without_keys {
            " --without-keys"
        } else {
            ""
        };
        out.command(&format!(
            "users list{filter} --limit {limit} --after {}",
            shell_word(id.as_str())
        ))
    });
    let shown = users.len();
    let rows = users
        .iter()
        .map(|u| {
            vec![
                u.id.as_str().to_owned(),
                u.user_name.clone(),
                u.email.clone().unwrap_or_else(|| "-".to_owned()),
                u.tenant
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), |t| t.as_str().to_owned()),
                when(Some(u.created_at)),
            ]
        })
        .collect();
    let value = json!({
        "users": users.iter().map(user_json).collect::<Vec<_>>(),
        "shown": shown,
        "total": total,
        "without_keys": page.without_keys,
        "next_after": next_after.as_ref().map(UserId::as_str),
        "next_command": next_command,
    });
    out.table(&["id", "user", "email", "tenant", "created"], rows, value)?;
    let what = if page.without_keys {
        "users without keys"
    } else {
        "users"
    };
    let of_total = total.map(|t| format!(" of {t}")).unwrap_or_default();
    let footer = match (&next_command, first_page) {
        (Some(next), _) => format!("{shown}{of_total} {what} shown; next page: {next}"),
        (None, true) => format!("all {shown} {what} shown"),
        (None, false) => format!("{shown}{of_total} {what} shown; this was the last page"),
    };
    out.line(&footer)
}
