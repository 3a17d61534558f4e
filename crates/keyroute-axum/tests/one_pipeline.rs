//! One request pipeline: the facade's `Keyroute::connect` (and its optional forms)
//! and the axum extractors run the same steps, so the same request gets the same
//! answer from both, and an optional caller is `None` only for a request with no
//! credential at all: a bad credential is never taken for none, nor for anonymous.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use axum_core::extract::FromRequestParts;
use axum_core::response::IntoResponse;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use keyroute::axum::{Caller, Connected, Problem, TlsConnection};
use keyroute::store::Sqlite;
use keyroute::{
    Config, Environment, IncomingRequest, KeyRequest, KeyType, Keyroute, NewUser, Principal,
};

/// The realm the extractors name by default.
const REALM: &str = "keyroute";

/// A request's credential headers, and whether it came over TLS.
struct Sent {
    name: &'static str,
    headers: Vec<(&'static str, Vec<u8>)>,
    tls: bool,
}

impl Sent {
    fn header_map(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in &self.headers {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        map
    }

    /// The request head an axum handler would see, TLS marked as a server does.
    fn parts(&self) -> http::request::Parts {
        let mut builder = http::Request::builder().uri("/orders");
        for (name, value) in &self.headers {
            builder = builder.header(*name, HeaderValue::from_bytes(value).unwrap());
        }
        let (mut parts, ()) = builder.body(()).unwrap().into_parts();
        if self.tls {
            parts.extensions.insert(TlsConnection);
        }
        parts
    }
}

/// What a client sees of a rejection: status, code, detail and challenge.
fn seen(problem: Problem) -> (StatusCode, String, String, String) {
    let (code, detail) = (problem.code().to_owned(), problem.detail().to_owned());
    let response = problem.into_response();
    let challenge = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (response.status(), code, detail, challenge)
}

/// Runs the extractor `T` on the request `sent` against the handle as app state.
async fn extract<T>(keyroute: &Keyroute<Sqlite>, sent: &Sent) -> Result<T, Problem>
where
    T: FromRequestParts<Keyroute<Sqlite>, Rejection = Problem>,
{
    T::from_request_parts(&mut sent.parts(), keyroute).await
}

/// A handle on two SQLite files in `dir` that requires TLS, with `extra` configuration.
async fn handle(dir: &std::path::Path, extra: &str) -> Keyroute<Sqlite> {
    let config = Config::from_toml_str(&format!(
        "[apikey]\ndangerous_accept_plain_http = false\n\
         [connections]\nlive = {:?}\ntest = {:?}\n{extra}",
        dir.join("live.db"),
        dir.join("test.db"),
    ))
    .unwrap();
    Keyroute::<Sqlite>::from_config(config).await.unwrap()
}

/// A good live key, and the table of bad requests: no credential first, then each
/// way a credential can be bad.
async fn requests(keyroute: &Keyroute<Sqlite>) -> (String, Vec<Sent>) {
    let ada = keyroute
        .keys()
        .register_user(NewUser::named("ada"))
        .await
        .unwrap();
    let live = ada
        .key(&KeyType::SECRET, &Environment::LIVE)
        .unwrap()
        .plaintext
        .expose_secret()
        .to_owned();
    let revoked = keyroute
        .keys()
        .issue_key(KeyRequest::new(KeyType::SECRET, Environment::LIVE))
        .await
        .unwrap();
    keyroute.keys().revoke(&revoked.key.id).await.unwrap();
    let revoked = revoked.plaintext.expose_secret().to_owned();
    let forged = keyroute
        .keys()
        .format()
        .generate(&KeyType::SECRET, &Environment::LIVE)
        .unwrap()
        .expose_secret()
        .to_owned();
    let mut flipped = live.clone();
    let last = flipped.pop().unwrap();
    flipped.push(if last == 'A' { 'B' } else { 'A' });
    let bearer = |token: &str| vec![("authorization", format!("Bearer {token}").into_bytes())];
    let sent = |name, headers, tls| Sent { name, headers, tls };
    let table = vec![
        sent("no credential", vec![], true),
        sent(
            "wrong scheme",
            vec![("authorization", format!("Digest {live}").into_bytes())],
            true,
        ),
        sent(
            "empty bearer",
            vec![("authorization", b"Bearer".to_vec())],
            true,
        ),
        sent("forged", bearer(&forged), true),
        sent("flipped checksum", bearer(&flipped), true),
        sent("revoked", bearer(&revoked), true),
        sent(
            "alg none JWT",
            bearer("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhZGEifQ."),
            true,
        ),
        sent("20 kB header", bearer(&"k".repeat(20 * 1024)), true),
        sent(
            "key in two places",
            vec![
                ("authorization", format!("Bearer {live}").into_bytes()),
                ("x-api-key", live.clone().into_bytes()),
            ],
            true,
        ),
        sent(
            "non-UTF-8 header",
            vec![("x-api-key", [live.as_bytes(), b"\xff"].concat())],
            true,
        ),
        sent("whitespace inside", bearer(&format!("{live} x")), true),
        sent("good key over plain HTTP", bearer(&live), false),
    ];
    (live, table)
}

/// The same table of credentials through `Keyroute::connect` (its error answered with
/// `Problem::route`) and through the `Connected` extractor: the same status, code,
/// detail and challenge for every row; a malformed credential is 400 on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_facade_and_the_extractor_answer_alike() {
    let dir = tempfile::tempdir().unwrap();
    let keyroute = handle(dir.path(), "").await;
    let (_, table) = requests(&keyroute).await;
    let mut statuses = Vec::new();
    for sent in &table {
        let name = sent.name;
        let headers = sent.header_map();
        let request = IncomingRequest::new(&headers).over_tls(sent.tls);
        let by_facade = match keyroute.connect(&request).await {
            Err(e) => seen(Problem::route(&e, REALM)),
            Ok(_) => panic!("{name}: the facade accepted it"),
        };
        let by_extractor = match extract::<Connected<Sqlite>>(&keyroute, sent).await {
            Err(problem) => seen(problem),
            Ok(_) => panic!("{name}: the extractor accepted it"),
        };
        assert_eq!(by_facade, by_extractor, "{name}");
        let by_caller = seen(extract::<Caller>(&keyroute, sent).await.unwrap_err());
        assert_eq!(by_caller, by_extractor, "{name}: Caller");
        statuses.push((name, by_facade.0, by_facade.1));
    }
    let malformed: Vec<_> = statuses
        .iter()
        .filter(|(_, status, _)| *status == StatusCode::BAD_REQUEST)
        .map(|(name, _, code)| (*name, code.as_str()))
        .collect();
    assert_eq!(
        malformed,
        [
            ("20 kB header", "malformed_credentials"),
            ("key in two places", "ambiguous_credentials"),
            ("non-UTF-8 header", "malformed_credentials"),
            ("whitespace inside", "malformed_credentials"),
        ]
    );
}

/// Every row but "no credential" is rejected by `Option<Caller>`, `Option<Connected>`,
/// `Connected<B, Option<Principal>>`, `Keyroute::authenticate_optional` and
/// `Keyroute::connect_or_anonymous` exactly as by `Connected`, even with an anonymous
/// route configured: a bad credential is never `None` and never anonymous.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_credential_is_never_none_nor_anonymous() {
    let dir = tempfile::tempdir().unwrap();
    let keyroute = handle(dir.path(), "[routing]\nanonymous = \"test\"\n").await;
    let (_, table) = requests(&keyroute).await;
    for sent in &table[1..] {
        let name = sent.name;
        let required = seen(
            extract::<Connected<Sqlite>>(&keyroute, sent)
                .await
                .unwrap_err(),
        );
        let optional_caller = extract::<Option<Caller>>(&keyroute, sent).await;
        let optional_connected = extract::<Option<Connected<Sqlite>>>(&keyroute, sent).await;
        let anyone = extract::<Connected<Sqlite, Option<Principal>>>(&keyroute, sent).await;
        assert_eq!(
            seen(optional_caller.unwrap_err()),
            required,
            "{name}: Option<Caller>"
        );
        assert_eq!(
            seen(optional_connected.unwrap_err()),
            required,
            "{name}: Option<Connected>"
        );
        assert_eq!(
            seen(anyone.unwrap_err()),
            required,
            "{name}: Connected<B, Option<Principal>>"
        );
        let headers = sent.header_map();
        let request = IncomingRequest::new(&headers).over_tls(sent.tls);
        let facade_auth = keyroute.authenticate_optional(&request).await.unwrap_err();
        assert_eq!(
            seen(Problem::auth(&facade_auth, REALM)),
            required,
            "{name}: authenticate_optional"
        );
        let facade_any = keyroute.connect_or_anonymous(&request).await.unwrap_err();
        assert_eq!(
            seen(Problem::route(&facade_any, REALM)),
            required,
            "{name}: connect_or_anonymous"
        );
    }
}

/// No credential at all: `Option<Caller>` and `Option<Connected>` give `None` (and
/// take no connection), `Connected<B, Option<Principal>>` and the facade's
/// `connect_or_anonymous` give no caller and the anonymous route's connection; a good
/// key gets its own environment's everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credential_is_none_or_the_anonymous_route() {
    let dir = tempfile::tempdir().unwrap();
    let keyroute = handle(dir.path(), "[routing]\nanonymous = \"test\"\n").await;
    let (live, table) = requests(&keyroute).await;
    let nobody = &table[0];
    assert!(
        extract::<Option<Caller>>(&keyroute, nobody)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        extract::<Option<Connected<Sqlite>>>(&keyroute, nobody)
            .await
            .unwrap()
            .is_none()
    );
    let anyone = extract::<Connected<Sqlite, Option<Principal>>>(&keyroute, nobody)
        .await
        .unwrap();
    assert_eq!((anyone.caller.is_none(), anyone.db.name()), (true, "test"));
    let headers = nobody.header_map();
    let request = IncomingRequest::new(&headers).over_tls(true);
    assert!(
        keyroute
            .authenticate_optional(&request)
            .await
            .unwrap()
            .is_none()
    );
    let (caller, db) = keyroute.connect_or_anonymous(&request).await.unwrap();
    assert_eq!((caller.is_none(), db.name()), (true, "test"));

    let keyed = Sent {
        name: "good key",
        headers: vec![("x-api-key", live.into_bytes())],
        tls: true,
    };
    let Caller(caller) = extract::<Option<Caller>>(&keyroute, &keyed)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(caller.environment(), &Environment::LIVE);
    let connected = extract::<Option<Connected<Sqlite>>>(&keyroute, &keyed)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(connected.db.name(), "live");
    let anyone = extract::<Connected<Sqlite, Option<Principal>>>(&keyroute, &keyed)
        .await
        .unwrap();
    assert_eq!((anyone.caller.is_some(), anyone.db.name()), (true, "live"));
}

/// Without an anonymous route, a request with no credential gets 401 `no_credentials`
/// from `Connected<B, Option<Principal>>` and the facade alike, with the same
/// challenge `Connected` gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_anonymous_route_nobody_gets_401() {
    let dir = tempfile::tempdir().unwrap();
    let keyroute = handle(dir.path(), "").await;
    let (_, table) = requests(&keyroute).await;
    let nobody = &table[0];
    let anyone = seen(
        extract::<Connected<Sqlite, Option<Principal>>>(&keyroute, nobody)
            .await
            .unwrap_err(),
    );
    let required = seen(
        extract::<Connected<Sqlite>>(&keyroute, nobody)
            .await
            .unwrap_err(),
    );
    assert_eq!(anyone, required);
    assert_eq!(
        (anyone.0, anyone.1.as_str()),
        (StatusCode::UNAUTHORIZED, "no_credentials")
    );
    let headers = nobody.header_map();
    let facade = keyroute
        .connect_or_anonymous(&IncomingRequest::new(&headers).over_tls(true))
        .await
        .unwrap_err();
    assert_eq!(seen(Problem::route(&facade, REALM)), required);
}
