//! `TokenFormat::parse` on arbitrary strings: never a panic, and a key that parses
//! parses the same way twice (the parser has no hidden state).
#![no_main]

use std::sync::LazyLock;

use keyroute_core::{Environment, KeyOptions, KeyType, TokenFormat};
use libfuzzer_sys::fuzz_target;

static FORMAT: LazyLock<Option<TokenFormat>> = LazyLock::new(|| {
    let mut options = KeyOptions::default();
    options.key_types = vec![KeyType::SECRET, KeyType::PUBLISHABLE, KeyType::RESTRICTED];
    options.environments = vec![
        Environment::LIVE,
        Environment::TEST,
        Environment::new("eu-live").ok()?,
    ];
    options.token_format().ok()
});

fuzz_target!(|input: &str| {
    let Some(format) = FORMAT.as_ref() else {
        return;
    };
    if let Ok(first) = format.parse(input) {
        let again = format
            .parse(input)
            .map(|k| (k.key_type, k.environment, k.hash));
        assert_eq!(
            again.ok(),
            Some((first.key_type, first.environment, first.hash))
        );
    }
});
