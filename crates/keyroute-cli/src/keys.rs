//! `keyroute users ...` and `keyroute keys ...`: the key service from the command line.
//! A plaintext key is printed exactly once, when it is issued or regenerated.

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use keyroute::keys::{Acting, IpNet, KeyQuery, KeyUpdate, Operator, Tenant};
use keyroute::store::Backend;
use keyroute::store::KeyStore;
use keyroute::{
    ApiKey, Environment, IssuedKey, KeyId, KeyRequest, KeyType, Keyroute, NewUser, Scopes, User,
    UserId,
};
use serde_json::{Value, json};

use crate::output::{CliError, Out, when};
use crate::{KeysCommand, Target, UpdateArgs, UsersCommand, args};

/// The key service acting as the person at this command: an operator named
/// `KEYROUTE_OPERATOR`, else `cli:$USER`, else `cli`. Operators may manage any key; the
/// name is what a record of the change will say.
pub(crate) fn as_operator<B: Backend>(keyroute: &Keyroute<B>) -> Acting<'_, KeyStore> {
    keyroute.keys().acting_as(operator())
}

fn operator() -> Operator {
    std::env::var("KEYROUTE_OPERATOR")
        .ok()
        .or_else(|| {
            std::env::var("USER")
                .or_else(|_| std::env::var("LOGNAME"))
                .ok()
                .map(|user| format!("cli:{user}"))
        })
        .and_then(|name| Operator::new(name).ok())
        .unwrap_or_else(|| Operator::named_default("cli"))
}

/// Parses a duration option (`90days`, `1h`).
pub(crate) fn duration(option: &str, value: &str) -> Result<Duration, CliError> {
    humantime::parse_duration(value.trim())
        .map_err(|e| args::bad_value(option, value, e, "give e.g. 30m, 24h or 90days"))
}

fn environment(value: &str) -> Result<Environment, CliError> {
    Environment::new(value).map_err(|e| args::bad_value("env", value, e, "e.g. live or test"))
}

/// A user by name, else by id. A key or token given instead is refused unrepeated.
pub(crate) async fn find_user<B: Backend>(
    keyroute: &Keyroute<B>,
    user: &str,
) -> Result<User, CliError> {
    if let Some(refused) = args::refuse_secret(keyroute.keys().format(), user, "a user name or id")
    {
        return Err(refused);
    }
    if let Some(found) = keyroute.store().find_user_by_name(user).await? {
        return Ok(found);
    }
    if let Ok(id) = UserId::new(user)
        && let Some(found) = keyroute.store().get_user(&id).await?
    {
        return Ok(found);
    }
    Err(CliError::failed(format!(
        "no user named or with id {}; add one with `keyroute users add NAME`",
        args::quoted(user)
    )))
}

pub(crate) fn user_json(user: &User) -> Value {
    json!({
        "id": user.id.as_str(),
        "user_name": user.user_name,
        "email": user.email,
        "tenant": user.tenant.as_ref().map(|t| t.as_str()),
        "created_at": user.created_at.to_rfc3339(),
    })
}

fn key_json(key: &ApiKey) -> Value {
    json!({
        "id": key.id.as_str(),
        "user_id": key.user_id.as_ref().map(|u| u.as_str()),
        "type": key.key_type.as_str(),
        "environment": key.environment.as_str(),
        "hint": key.hint,
        "name": key.name,
        "scopes": key.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "created_at": key.created_at.to_rfc3339(),
        "expires_at": key.expires_at.map(|t| t.to_rfc3339()),
        "cancelled_at": key.cancelled_at.map(|t| t.to_rfc3339()),
        "enabled": key.enabled,
        "allowed_networks": key.allowed_networks.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "limits": key.limits,
        "credits": key.credits,
    })
}

const KEY_HEADER: &[&str] = &[
    "id",
    "type",
    "env",
    "hint",
    "name",
    "scopes",
    "expires",
    "cancelled",
];

fn key_row(key: &ApiKey) -> Vec<String> {
    vec![
        key.id.as_str().to_owned(),
        key.key_type.as_str().to_owned(),
        key.environment.as_str().to_owned(),
        key.hint.clone(),
        key.name.clone().unwrap_or_else(|| "-".to_owned()),
        key.scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        when(key.expires_at),
        when(key.cancelled_at),
    ]
}

/// Prints keys just made, with their plaintexts: the one time they are shown.
fn print_issued(out: Out, issued: &[IssuedKey], extra: Value) -> Result<(), CliError> {
    let value = json!({
        "keys": issued.iter().map(|k| {
            let mut v = key_json(&k.key);
            v["plaintext"] = Value::String(k.plaintext.expose_secret().to_owned());
            v
        }).collect::<Vec<_>>(),
        "extra": extra,
    });
    let rows = issued
        .iter()
        .map(|k| {
            vec![
                k.key.id.as_str().to_owned(),
                k.key.key_type.as_str().to_owned(),
                k.key.environment.as_str().to_owned(),
                k.plaintext.expose_secret().to_owned(),
            ]
        })
        .collect();
    // A closed pipe usually ends a command quietly, but not here: a key nobody saw is a
    // key nobody can use, and the person must learn that it exists.
    out.table(
        &["id", "type", "env", "key (shown once: store it now)"],
        rows,
        value,
    )
    .map_err(|e| match e {
        CliError::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe => {
            let ids: Vec<&str> = issued.iter().map(|k| k.key.id.as_str()).collect();
            CliError::failed(format!(
                "the output closed before the new key(s) could be shown, so nobody has their secret; they were stored as {}: revoke them with `keyroute keys revoke ID` and make new ones",
                ids.join(", ")
            ))
        }
        other => other,
    })
}

/// `keyroute users ...`.
pub(crate) async fn users<B: Backend>(
    keyroute: &Keyroute<B>,
    command: UsersCommand,
    out: Out,
) -> Result<(), CliError> {
    match command {
        UsersCommand::Add {
            name,
            email,
            tenant,
        } => {
            let mut new_user = NewUser::named(name);
            if let Some(email) = email {
                new_user = new_user.with_email(email);
            }
            if let Some(tenant) = tenant {
                let tenant =
                    Tenant::new(&tenant).map_err(|e| args::bad_value("tenant", &tenant, e, ""))?;
                new_user = new_user.with_tenant(tenant);
            }
            let registration = keyroute.keys().register_user(new_user).await?;
            out.line(&format!(
                "user {} ({})",
                registration.user.user_name,
                registration.user.id.as_str()
            ))?;
            print_issued(
                out,
                &registration.keys,
                json!({ "user": user_json(&registration.user) }),
            )?;
        }
        UsersCommand::List {
            limit,
            after,
            all,
            without_keys,
        } => {
            let page = crate::listing::Page {
                limit,
                after,
                all,
                without_keys,
            };
            crate::listing::users(keyroute, page, out).await?;
        }
        UsersCommand::Show { user } => {
            let user = find_user(keyroute, &user).await?;
            let keys = as_operator(keyroute)
                .list_keys(&user.id, &KeyQuery::all())
                .await?;
            out.line(&format!("user {} ({})", user.user_name, user.id.as_str()))?;
            let value = json!({ "user": user_json(&user), "keys": keys.iter().map(key_json).collect::<Vec<_>>() });
            out.table(KEY_HEADER, keys.iter().map(key_row).collect(), value)?;
        }
    }
    Ok(())
}

/// Asks on the terminal; refuses without one (pass --yes in scripts).
fn confirm(question: &str, yes: bool) -> Result<(), CliError> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::failed(
            "refusing to replace keys without confirmation: no terminal to ask on; pass --yes",
        ));
    }
    let mut stderr = std::io::stderr();
    // The question names a user from the store: escaped, like every name shown.
    write!(stderr, "{} [y/N] ", crate::output::escaped(question))?;
    stderr.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(CliError::failed("not confirmed; nothing was changed"))
    }
}

async fn regenerate<B: Backend>(
    keyroute: &Keyroute<B>,
    target: &Target,
    grace: Option<Duration>,
    yes: bool,
    out: Out,
) -> Result<(), CliError> {
    let user = find_user(keyroute, &target.user).await?;
    let env = environment(&target.environment)?;
    let when_old_stop = grace.map_or_else(
        || "now".to_owned(),
        |g| format!("after {}", humantime::format_duration(g)),
    );
    confirm(
        &format!(
            "replace every {} key of {}? the old keys stop working {when_old_stop}",
            env.as_str(),
            user.user_name
        ),
        yes,
    )?;
    let regenerated = as_operator(keyroute)
        .regenerate(&user.id, &env, grace)
        .await?;
    let retired: Vec<Value> = regenerated.retired.iter().map(key_json).collect();
    out.line(&format!(
        "{} old key(s) retired ({when_old_stop}); new keys:",
        regenerated.retired.len()
    ))?;
    print_issued(out, &regenerated.issued, json!({ "retired": retired }))
}

/// `keyroute keys ...`.
pub(crate) async fn keys<B: Backend>(
    keyroute: &Keyroute<B>,
    command: KeysCommand,
    out: Out,
) -> Result<(), CliError> {
    match command {
        KeysCommand::Issue {
            user,
            key_type,
            environment: env,
            name,
            scopes,
            expires_in,
            limits,
        } => {
            let user = find_user(keyroute, &user).await?;
            let key_type =
                KeyType::new(&key_type).map_err(|e| args::bad_value("type", &key_type, e, ""))?;
            let mut request = KeyRequest::new(key_type, environment(&env)?).for_user(user.id);
            if let Some(name) = name {
                request = request.named(name);
            }
            if !scopes.is_empty() {
                let scopes = Scopes::parse(scopes.iter())
                    .map_err(|e| CliError::failed(format!("--scope: {e}")))?;
                request = request.with_scopes(scopes);
            }
            if let Some(lifetime) = expires_in {
                request = request.expires_in(duration("expires-in", &lifetime)?);
            }
            request.limits = limits.parsed_limits()?;
            request.credits = limits.parsed_credits()?;
            let issued = as_operator(keyroute).issue_key(request).await?;
            print_issued(out, std::slice::from_ref(&issued), Value::Null)?;
        }
        KeysCommand::List {
            user,
            environment: env,
        } => {
            let user = find_user(keyroute, &user).await?;
            let mut query = KeyQuery::all();
            if let Some(env) = env {
                query = query.in_environment(environment(&env)?);
            }
            let keys = as_operator(keyroute).list_keys(&user.id, &query).await?;
            let value = json!({ "keys": keys.iter().map(key_json).collect::<Vec<_>>() });
            out.table(KEY_HEADER, keys.iter().map(key_row).collect(), value)?;
        }
        KeysCommand::Show { id } => {
            let key = get_key(keyroute, &id).await?;
            out.table(KEY_HEADER, vec![key_row(&key)], key_json(&key))?;
        }
        KeysCommand::Revoke { id } => {
            let key_id = key_id(keyroute, &id)?;
            let revoked = as_operator(keyroute)
                .revoke(&key_id)
                .await?
                .ok_or_else(|| no_key(&id))?;
            out.line(&format!("revoked {}", revoked.id.as_str()))?;
            out.table(KEY_HEADER, vec![key_row(&revoked)], key_json(&revoked))?;
        }
        KeysCommand::Update(args) => update(keyroute, args, out).await?,
        KeysCommand::Import { file, format } => {
            crate::import::import(keyroute, &file, format, out).await?;
        }
        KeysCommand::Regenerate { target, grace, yes } => {
            let grace = grace.map(|g| duration("grace", &g)).transpose()?;
            regenerate(keyroute, &target, grace, yes, out).await?;
        }
        KeysCommand::Roll { target, grace, yes } => {
            // No single-key roll in the library: a roll is a regeneration with a grace period.
            let grace = duration("grace", &grace)?;
            regenerate(keyroute, &target, Some(grace), yes, out).await?;
        }
    }
    Ok(())
}

/// `keyroute keys update ID ...`: the options given become one [`KeyUpdate`], applied
/// as the operator; core decides what may change.
async fn update<B: Backend>(
    keyroute: &Keyroute<B>,
    options: UpdateArgs,
    out: Out,
) -> Result<(), CliError> {
    let UpdateArgs {
        id,
        name,
        clear_name,
        scopes,
        expires_in,
        no_expiry,
        notes,
        ref_id,
        meta,
        networks,
        any_network,
        enable,
        disable,
        limits,
        no_limits,
        unmetered,
    } = options;
    let key_id = key_id(keyroute, &id)?;
    let mut update = KeyUpdate::new();
    if name.is_some() || clear_name {
        update = update.name(name);
    }
    if !scopes.is_empty() {
        let scopes =
            Scopes::parse(scopes.iter()).map_err(|e| CliError::failed(format!("--scope: {e}")))?;
        update = update.scopes(scopes);
    }
    if let Some(lifetime) = expires_in {
        let lifetime = duration("expires-in", &lifetime)?;
        let at = chrono::TimeDelta::from_std(lifetime)
            .ok()
            .and_then(|d| keyroute.keys().clock().now().checked_add_signed(d))
            .ok_or_else(|| CliError::failed("--expires-in: too long to represent"))?;
        update = update.expires_at(Some(at));
    } else if no_expiry {
        update = update.expires_at(None);
    }
    if let Some(notes) = notes {
        update = update.notes(Some(notes));
    }
    if let Some(ref_id) = ref_id {
        update = update.ref_id(Some(ref_id));
    }
    if !meta.is_empty() {
        let entries = meta
            .iter()
            .map(|entry| {
                entry
                    .split_once('=')
                    .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
                    .filter(|(k, _)| !k.is_empty())
                    .ok_or_else(|| {
                        args::bad_value("meta", entry, "no KEY=", "write e.g. --meta team=payments")
                    })
            })
            .collect::<Result<keyroute::keys::Meta, _>>()?;
        update = update.meta(entries);
    }
    if any_network {
        update = update.allowed_networks(Vec::new());
    } else if !networks.is_empty() {
        let parsed = networks
            .iter()
            .map(|n| {
                n.trim().parse::<IpNet>().map_err(|e| {
                    args::bad_value("network", n, e, "write e.g. 10.0.0.0/8 or 2001:db8::/32")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        update = update.allowed_networks(parsed);
    }
    if enable || disable {
        update = update.enabled(enable);
    }
    if no_limits {
        update = update.limits(Vec::new());
    } else if !limits.limits.is_empty() {
        update = update.limits(limits.parsed_limits()?);
    }
    if unmetered {
        update = update.credits(None);
    } else if let Some(credits) = limits.parsed_credits()? {
        update = update.credits(Some(credits));
    }
    if update.is_empty() {
        return Err(CliError::Usage(
            "name something to change: --name, --clear-name, --scope, --expires-in, --no-expiry, --notes, --ref-id, --meta, --network, --any-network, --enable, --disable, --limit, --no-limits, --credits or --unmetered".to_owned(),
        ));
    }
    let updated = as_operator(keyroute)
        .update_key(&key_id, &update)
        .await?
        .ok_or_else(|| no_key(&id))?;
    let changed = if updated.changed.is_empty() {
        "nothing".to_owned()
    } else {
        updated.changed.join(", ")
    };
    out.line(&format!(
        "updated {} (changed: {changed})",
        updated.key.id.as_str()
    ))?;
    let mut value = key_json(&updated.key);
    value["changed"] = json!(updated.changed);
    out.table(KEY_HEADER, vec![key_row(&updated.key)], value)
}

/// `id` as a key id; a key or token given instead is refused unrepeated.
pub(crate) fn key_id<B: Backend>(keyroute: &Keyroute<B>, id: &str) -> Result<KeyId, CliError> {
    if let Some(refused) = args::refuse_secret(keyroute.keys().format(), id, "a key id") {
        return Err(refused);
    }
    KeyId::new(id).map_err(|_| no_key(id))
}

fn no_key(id: &str) -> CliError {
    CliError::failed(format!(
        "no key with id {}; list a user's keys with `keyroute keys list --user NAME`",
        args::quoted(id)
    ))
}

async fn get_key<B: Backend>(keyroute: &Keyroute<B>, id: &str) -> Result<ApiKey, CliError> {
    as_operator(keyroute)
        .key(&key_id(keyroute, id)?)
        .await?
        .ok_or_else(|| no_key(id))
}
