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

/// Every character a key may hold: prefixes, environments, separators and entropy.
const KEY_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The character put in place of a key's character, built so it never equals it: no
/// case is discarded, so any number of cases runs.
#[derive(Debug, Clone)]
enum Replacement {
    /// Another character of [`KEY_ALPHABET`]: this many places on from the original,
    /// 1 to 63, so never the original itself.
    OtherInAlphabet(usize),
    /// Any character outside the alphabet; one inside it is moved out of ASCII.
    Outside(char),
}

impl Replacement {
    fn instead_of(&self, original: u8) -> char {
        match *self {
            Replacement::OtherInAlphabet(offset) => {
                let at = KEY_ALPHABET
                    .iter()
                    .position(|&c| c == original)
                    .unwrap_or(0);
                char::from(KEY_ALPHABET[(at + offset) % KEY_ALPHABET.len()])
            }
            // Keys are ASCII, so any non-ASCII character differs; an ASCII alphabet
            // character moves up by 0x100 (to Latin Extended), never back into ASCII.
            Replacement::Outside(c) if c.is_ascii() && KEY_ALPHABET.contains(&(c as u8)) => {
                char::from_u32(u32::from(c) + 0x100).unwrap_or('\u{fffd}')
            }
            Replacement::Outside(c) => c,
        }
    }
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

    /// Changing any one character of a valid key, to anything else, makes it fail to parse.
    #[test]
    fn any_single_character_change_is_rejected(
        (key_type, env) in type_and_env(),
        position in any::<prop::sample::Index>(),
        replacement in prop_oneof![
            (1..KEY_ALPHABET.len()).prop_map(Replacement::OtherInAlphabet),
            any::<char>().prop_map(Replacement::Outside),
        ],
    ) {
        let format = format();
        let key = format.generate(&key_type, &env).unwrap();
        let original = key.expose_secret();
        let index = position.index(original.len());
        let old = original.as_bytes()[index];
        let new = replacement.instead_of(old);
        prop_assert_ne!(new, char::from(old), "the generator never keeps the character");
        let mut changed = String::with_capacity(original.len() + 4);
        changed.push_str(&original[..index]);
        changed.push(new);
        changed.push_str(&original[index + 1..]);
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
