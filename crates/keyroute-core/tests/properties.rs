//! Property tests of the token format: every type × environment round-trips, and any
//! single-character change to a valid key fails parsing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use keyroute_core::{CredentialExtractor, Environment, KeyOptions, KeyType, TokenFormat};
use proptest::prelude::*;

fn format() -> TokenFormat {
    let mut options = KeyOptions::default();
    options.key_types = vec![KeyType::SECRET, KeyType::PUBLISHABLE, KeyType::RESTRICTED];
    options.environments = vec![
        Environment::LIVE,
        Environment::TEST,
        Environment::new("staging").unwrap(),
    ];
    options.token_format().unwrap()
}

fn type_and_env() -> impl Strategy<Value = (KeyType, Environment)> {
    let types = prop::sample::select(vec![
        KeyType::SECRET,
        KeyType::PUBLISHABLE,
        KeyType::RESTRICTED,
    ]);
    let envs = prop::sample::select(vec![
        Environment::LIVE,
        Environment::TEST,
        Environment::new("staging").unwrap(),
    ]);
    (types, envs)
}

proptest! {
    /// Generated keys parse back to their type, environment and hash.
    #[test]
    fn generate_parse_round_trip((key_type, env) in type_and_env()) {
        let format = format();
        let key = format.generate(&key_type, &env).unwrap();
        let parsed = format.parse(key.expose_secret()).unwrap();
        prop_assert_eq!(parsed.key_type, key_type);
        prop_assert_eq!(parsed.environment, env);
        prop_assert_eq!(parsed.hash, key.hash());
    }

    /// Any entropy of an allowed length formats into a key that parses back.
    #[test]
    fn encode_parse_round_trip(
        (key_type, env) in type_and_env(),
        entropy in prop::collection::vec(any::<u8>(), 16..=128),
    ) {
        let format = format();
        let key = format.encode(&key_type, &env, &entropy).unwrap();
        let parsed = format.parse(key.expose_secret()).unwrap();
        prop_assert_eq!((parsed.key_type, parsed.environment), (key_type, env));
    }

    /// Changing any one character of a valid key, to anything, makes it fail to parse.
    #[test]
    fn any_single_character_change_is_rejected(
        (key_type, env) in type_and_env(),
        position in any::<prop::sample::Index>(),
        replacement in prop_oneof![
            prop::sample::select(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".to_vec()).prop_map(char::from),
            any::<char>(),
        ],
    ) {
        let format = format();
        let key = format.generate(&key_type, &env).unwrap();
        let original = key.expose_secret();
        let index = position.index(original.len());
        let mut changed = String::with_capacity(original.len() + 4);
        changed.push_str(&original[..index]);
        changed.push(replacement);
        changed.push_str(&original[index + 1..]);
        prop_assume!(changed != original);
        prop_assert!(format.parse(&changed).is_err(), "{changed} parsed");
    }

    /// Arbitrary text never panics the parser.
    #[test]
    fn parse_never_panics(input in ".{0,300}") {
        let _ = format().parse(&input);
    }

    /// Arbitrary header bytes never panic the extractor.
    #[test]
    fn extract_never_panics(value in prop::collection::vec(any::<u8>(), 0..600)) {
        let extractor = CredentialExtractor::default();
        let _ = extractor.from_authorization(&value);
        let _ = extractor.from_api_key_header(&value);
    }
}
