//! Configuration loading on arbitrary input: a TOML document, and the same bytes read
//! as `KEYROUTE_*=value` lines. Never a panic; whatever loads also validates.
#![no_main]

use keyroute::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    if let Ok(config) = Config::from_toml_str(input) {
        assert!(config.validate().is_ok(), "a loaded configuration validates");
    }
    let vars = input.lines().filter_map(|line| line.split_once('='));
    if let Ok(config) = Config::from_env_vars(vars) {
        assert!(config.validate().is_ok(), "a loaded configuration validates");
    }
});
