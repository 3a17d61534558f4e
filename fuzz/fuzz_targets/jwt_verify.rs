//! `JwtService::decode` on arbitrary strings with an HS256 key: never a panic, and
//! anything accepted carries an accepted environment.
#![no_main]

use keyroute_fuzz::{SERVICE, check_accepted};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|token: &str| {
    if let Some(service) = SERVICE.as_ref() {
        check_accepted(service, token);
    }
});
