//! Ratios between criterion benchmarks of one run, read back from criterion's own
//! estimates, so a bench can print "lookup = 1.12 × SELECT 1" beside its timings.
//!
//! Criterion writes `<dir>/<group>/<function>/new/estimates.json`, where `<dir>` is
//! `$CRITERION_HOME` or `<target>/criterion`. Benches know `<target>` from
//! `CARGO_TARGET_TMPDIR` (`<target>/tmp`), which Cargo sets when building them; pass it
//! in with `env!("CARGO_TARGET_TMPDIR")`. Use ids of `[a-z0-9_]` so criterion keeps
//! them as they are.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where criterion wrote its estimates, given the bench's `CARGO_TARGET_TMPDIR`.
pub fn criterion_dir(target_tmpdir: &str) -> PathBuf {
    std::env::var_os("CRITERION_HOME").map_or_else(
        || Path::new(target_tmpdir).join("..").join("criterion"),
        PathBuf::from,
    )
}

/// The median criterion estimated for `group/function` in the latest run.
pub fn median(dir: &Path, group: &str, function: &str) -> Option<Duration> {
    let path = dir
        .join(group)
        .join(function)
        .join("new")
        .join("estimates.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    let nanos = json.get("median")?.get("point_estimate")?.as_f64()?;
    Some(Duration::from_secs_f64(nanos / 1e9))
}

/// One line comparing two benchmarks: their medians and their ratio, or what is missing.
pub fn ratio_line(
    dir: &Path,
    label: &str,
    (group, function): (&str, &str),
    (base_group, base): (&str, &str),
) -> String {
    match (median(dir, group, function), median(dir, base_group, base)) {
        (Some(m), Some(b)) if !b.is_zero() => format!(
            "{label}: {m:?} / {b:?} = {:.2} x  ({group}/{function} vs {base_group}/{base})",
            m.as_secs_f64() / b.as_secs_f64()
        ),
        _ => format!(
            "{label}: no estimates for {group}/{function} and {base_group}/{base} (was it filtered out?)"
        ),
    }
}
