//! keyroute in one screen: register a user, get a live and a test key, authenticate
//! header values, and watch bad ones fail with typed errors.
//!
//! Run with `cargo run --example quickstart`.
#![allow(clippy::print_stdout)] // a demo's output is its point

use http::HeaderMap;
use keyroute::store::MemoryStore;
use keyroute::{
    ApiKeyStore, AuthError, CredentialExtractor, Environment, KeyOptions, KeyService, KeyType,
    NewUser, Principal,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let service = KeyService::new(MemoryStore::new(), KeyOptions::default())?;
    let registration = service.register_user(NewUser::named("ada")).await?;
    let live = registration
        .key(&KeyType::SECRET, &Environment::LIVE)
        .ok_or("no live key")?;
    let test = registration
        .key(&KeyType::SECRET, &Environment::TEST)
        .ok_or("no test key")?;
    println!("registered user '{}'", registration.user.user_name);
    println!(
        "  live key: {}  (shown once; stored as SHA-256 only)",
        live.plaintext.expose_secret()
    );
    println!("  test key: {}", test.plaintext.expose_secret());

    let live_key = live.plaintext.expose_secret();
    let test_key = test.plaintext.expose_secret();
    let mut flipped = live_key.to_owned();
    let last = flipped.pop().ok_or("empty key")?;
    flipped.push(if last == 'A' { 'B' } else { 'A' });
    let extractor = CredentialExtractor::default();

    println!("\nauthenticating header values:");
    let attempts = [
        ("Authorization", format!("Bearer {live_key}")),
        ("X-Api-Key", test_key.to_owned()),
        ("Authorization", format!("Basic {}", basic_user(test_key))),
        ("Authorization", format!("Bearer {flipped}")),
        (
            "Authorization",
            format!("Bearer {}", live_key.replacen("live", "prod", 1)),
        ),
        ("Authorization", "Digest username=ada".to_owned()),
        ("Authorization", "Bearer".to_owned()),
    ];
    for (name, value) in attempts {
        let mut headers = HeaderMap::new();
        headers.insert(http::HeaderName::try_from(name)?, value.parse()?);
        let shown = redact(&value);
        match authenticate(&service, &extractor, &headers).await {
            Ok(p) => println!(
                "  ok      {name}: {shown:<40} -> user {}, environment {}",
                p.user().map_or("-", |u| u.user_name.as_str()),
                p.environment()
            ),
            Err(e) => println!("  reject  {name}: {shown:<40} -> {e}  [{}]", variant(&e)),
        }
    }
    Ok(())
}

/// Extract, parse offline, look up by hash, check the key still works.
async fn authenticate(
    service: &KeyService<MemoryStore>,
    extractor: &CredentialExtractor,
    headers: &HeaderMap,
) -> Result<Principal, AuthError> {
    let credential = extractor.extract(headers, None)?;
    let presented = service.format().parse(credential.token.expose_secret())?;
    let found = service
        .store()
        .get_api_key_by_hash(&presented.hash)
        .await?
        .ok_or(AuthError::UnknownKey)?;
    match found
        .key
        .status(keyroute::Clock::now(service.clock().as_ref()))
    {
        keyroute::KeyStatus::Active => Ok(Principal::from_api_key(
            found.key.into(),
            found.user.map(Into::into),
        )),
        keyroute::KeyStatus::Expired => Err(AuthError::Expired),
        _ => Err(AuthError::Revoked),
    }
}

fn basic_user(key: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
}

/// Shows a header value with the middle of any key elided.
fn redact(value: &str) -> String {
    if value.len() > 24 {
        format!("{}…{}", &value[..18], &value[value.len() - 4..])
    } else {
        value.to_owned()
    }
}

/// The error's variant name, to show the rejection is typed.
fn variant(e: &AuthError) -> String {
    let debug = format!("{e:?}");
    debug
        .split(['(', ')', ' ', '{'])
        .filter(|part| !part.is_empty())
        .take(2)
        .collect::<Vec<_>>()
        .join("::")
}
