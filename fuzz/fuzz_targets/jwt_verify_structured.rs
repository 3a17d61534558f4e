//! `JwtService::decode` on mutations of a valid token. Random strings rarely get past
//! the signature; here most mutations are re-signed, so the header, claim and scope
//! parsers behind it are what gets fuzzed.
#![no_main]

use arbitrary::Arbitrary;
use keyroute_fuzz::{KID, NOW, SERVICE, check_accepted, sign};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

/// The claims (and header fields) a mutation may touch.
const NAMES: &[&str] = &[
    "iss", "sub", "aud", "exp", "nbf", "iat", "jti", "kind", "env", "key_type", "key_id", "tenant",
    "scopes", "key_exp", "alg", "kid", "crit", "typ",
];

/// A JSON value the fuzzer builds.
#[derive(Debug, Arbitrary)]
enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn value(&self, depth: u8) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => json!(b),
            Json::Int(n) => json!(n),
            Json::Float(f) => json!(f),
            Json::Str(s) => json!(s),
            _ if depth > 4 => Value::Null,
            Json::Array(items) => items.iter().map(|v| v.value(depth + 1)).collect(),
            Json::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.value(depth + 1)))
                    .collect(),
            ),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Mutation {
    /// Overwrite bytes of the signed token (not re-signed).
    Bytes(Vec<(u16, u8)>),
    /// Cut the token short.
    Truncate(u16),
    /// Set, or with `None` remove, claims of the valid payload; re-signed.
    Claims(Vec<(u8, Option<Json>)>),
    /// Set, or remove, header fields; re-signed.
    Header(Vec<(u8, Option<Json>)>),
    /// Any payload text, re-signed.
    Payload(String),
    /// Any header text, re-signed.
    HeaderText(String),
}

fn valid_header() -> Map<String, Value> {
    let mut header = Map::new();
    header.insert("alg".into(), json!("HS256"));
    header.insert("typ".into(), json!("JWT"));
    header.insert("kid".into(), json!(KID));
    header
}

fn valid_claims() -> Map<String, Value> {
    let claims = json!({
        "jti": "0123456789abcdef0123456789abcdef",
        "kind": "exchange",
        "env": "test",
        "key_type": "secret",
        "key_id": "fedcba9876543210fedcba9876543210",
        "tenant": "acme-eu",
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + 900,
        "key_exp": NOW + 600,
        "scopes": {"orders": {"actions": ["read", "create"]}},
    });
    match claims {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn apply(map: &mut Map<String, Value>, edits: &[(u8, Option<Json>)]) {
    for (name, value) in edits {
        let name = NAMES[usize::from(*name) % NAMES.len()];
        match value {
            Some(value) => map.insert(name.to_owned(), value.value(0)),
            None => map.remove(name),
        };
    }
}

fuzz_target!(|mutation: Mutation| {
    let Some(service) = SERVICE.as_ref() else {
        return;
    };
    let header = Value::Object(valid_header()).to_string();
    let claims = Value::Object(valid_claims()).to_string();
    let Some(valid) = sign(&header, &claims) else {
        return;
    };
    let token = match mutation {
        Mutation::Bytes(edits) => {
            let mut bytes = valid.into_bytes();
            let len = bytes.len().max(1);
            for (at, byte) in edits {
                if let Some(slot) = bytes.get_mut(usize::from(at) % len) {
                    *slot = byte;
                }
            }
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Mutation::Truncate(at) => valid
            .get(..usize::from(at) % (valid.len() + 1))
            .unwrap_or_default()
            .to_owned(),
        Mutation::Claims(edits) => {
            let mut map = valid_claims();
            apply(&mut map, &edits);
            sign(&header, &Value::Object(map).to_string()).unwrap_or_default()
        }
        Mutation::Header(edits) => {
            let mut map = valid_header();
            apply(&mut map, &edits);
            sign(&Value::Object(map).to_string(), &claims).unwrap_or_default()
        }
        Mutation::Payload(text) => sign(&header, &text).unwrap_or_default(),
        Mutation::HeaderText(text) => sign(&text, &claims).unwrap_or_default(),
    };
    check_accepted(service, &token);
});
