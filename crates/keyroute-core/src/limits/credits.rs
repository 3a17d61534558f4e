//! Credits: a balance each request of a key spends its cost from, refilled (set back
//! to an amount) every period if the key has a [`Refill`]. The balance lives in the key
//! store, which applies [`Credits::spend`] atomically; this is the arithmetic.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveTime, TimeDelta, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::LimitError;

/// How often a balance is refilled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefillPeriod {
    /// Every so long, counted from when the credits were set.
    Every(Duration),
    /// At midnight UTC.
    Daily,
    /// At midnight UTC on the first day of each month.
    Monthly,
}

impl RefillPeriod {
    /// The first refill instant strictly after `now`, for a schedule whose previous
    /// refill instant was `previous` (missed periods are skipped: a refill happens once,
    /// however long nobody spent).
    pub fn next_after(&self, previous: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
        match *self {
            RefillPeriod::Every(every) => {
                let step = TimeDelta::from_std(every).unwrap_or(TimeDelta::MAX);
                let step_ns = step.num_nanoseconds().unwrap_or(i64::MAX).max(1);
                let behind = (now - previous).num_nanoseconds().unwrap_or(i64::MAX);
                let steps = if behind < 0 { 1 } else { behind / step_ns + 1 };
                let ahead = steps.checked_mul(step_ns).unwrap_or(i64::MAX);
                previous
                    .checked_add_signed(TimeDelta::nanoseconds(ahead))
                    .unwrap_or(DateTime::<Utc>::MAX_UTC)
            }
            RefillPeriod::Daily => {
                let midnight = now.date_naive().and_time(NaiveTime::MIN).and_utc();
                midnight
                    .checked_add_signed(TimeDelta::days(1))
                    .unwrap_or(DateTime::<Utc>::MAX_UTC)
            }
            RefillPeriod::Monthly => {
                let (year, month) = match now.month() {
                    12 => (now.year().saturating_add(1), 1),
                    m => (now.year(), m + 1),
                };
                Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0)
                    .single()
                    .unwrap_or(DateTime::<Utc>::MAX_UTC)
            }
        }
    }
}

/// A refill: every period, the balance is set back to `amount` (unspent credits do
/// not accumulate). Written `AMOUNT/daily`, `AMOUNT/monthly` or `AMOUNT/<duration>`
/// (`1000/1h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Refill {
    /// The balance after a refill.
    pub amount: u64,
    /// How often.
    pub every: RefillPeriod,
}

impl Refill {
    /// A refill to `amount` every `every`.
    ///
    /// # Errors
    /// [`LimitError::BadRefill`] for an amount of 0 or an interval outside 1 s to 366
    /// days.
    pub fn new(amount: u64, every: RefillPeriod) -> Result<Self, LimitError> {
        let interval_ok = match every {
            RefillPeriod::Every(d) => {
                d >= Duration::from_secs(1) && d <= Duration::from_secs(366 * 24 * 3600)
            }
            _ => true,
        };
        if amount == 0 || amount > i64::MAX as u64 || !interval_ok {
            return Err(LimitError::BadRefill);
        }
        Ok(Self { amount, every })
    }
}

impl fmt::Display for Refill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.every {
            RefillPeriod::Every(d) => {
                write!(f, "{}/{}", self.amount, humantime::format_duration(d))
            }
            RefillPeriod::Daily => write!(f, "{}/daily", self.amount),
            RefillPeriod::Monthly => write!(f, "{}/monthly", self.amount),
        }
    }
}

impl FromStr for Refill {
    type Err = LimitError;

    fn from_str(text: &str) -> Result<Self, LimitError> {
        let (amount, period) = text.trim().split_once('/').ok_or(LimitError::BadRefill)?;
        let amount = amount.trim().parse().map_err(|_| LimitError::BadRefill)?;
        let every = match period.trim() {
            "daily" => RefillPeriod::Daily,
            "monthly" => RefillPeriod::Monthly,
            other => RefillPeriod::Every(
                humantime::parse_duration(other).map_err(|_| LimitError::BadRefill)?,
            ),
        };
        Refill::new(amount, every)
    }
}

impl Serialize for Refill {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Refill {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A key's credits: the balance now, and its refill if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Credits {
    /// Units left to spend.
    pub remaining: u64,
    /// How the balance is refilled; never, when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refill: Option<Refill>,
    /// When the next refill happens (set from `refill` when the credits are set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_refill_at: Option<DateTime<Utc>>,
}

/// What spending credits did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CreditSpend {
    /// Spent.
    Spent {
        /// The balance after spending, when the store can tell without another query
        /// (the SQL stores spend in one UPDATE and cannot).
        remaining: Option<u64>,
    },
    /// Not enough credits: nothing was spent.
    Exhausted {
        /// The balance, smaller than the cost.
        remaining: u64,
        /// When the next refill comes, if one will.
        next_refill_at: Option<DateTime<Utc>>,
    },
    /// The key has no credits: nothing to spend, nothing refused.
    Unmetered,
}

impl Credits {
    /// A balance of `remaining` with no refill.
    pub fn new(remaining: u64) -> Self {
        Self {
            remaining: remaining.min(i64::MAX as u64),
            refill: None,
            next_refill_at: None,
        }
    }

    /// Adds a refill, the first one due after `now`.
    pub fn with_refill(mut self, refill: Refill, now: DateTime<Utc>) -> Self {
        self.refill = Some(refill);
        self.next_refill_at = Some(refill.every.next_after(now, now));
        self
    }

    /// The refill due at `now`, if one is: the balance it sets and the next refill
    /// instant. The store applies it only if nobody applied it first (it compares
    /// `next_refill_at`), so one refill happens once however many instances see it.
    pub fn due_refill(&self, now: DateTime<Utc>) -> Option<(u64, DateTime<Utc>)> {
        let (refill, due) = (self.refill?, self.next_refill_at?);
        (due <= now).then(|| (refill.amount, refill.every.next_after(due, now)))
    }

    /// Applies a due refill, then spends `cost` if the balance covers it: all or
    /// nothing, never below zero.
    pub fn spend(&mut self, cost: u64, now: DateTime<Utc>) -> CreditSpend {
        if let Some((amount, next)) = self.due_refill(now) {
            self.remaining = amount;
            self.next_refill_at = Some(next);
        }
        match self.remaining.checked_sub(cost) {
            Some(left) => {
                self.remaining = left;
                CreditSpend::Spent {
                    remaining: Some(left),
                }
            }
            None => CreditSpend::Exhausted {
                remaining: self.remaining,
                next_refill_at: self.next_refill_at,
            },
        }
    }

    /// Whether these credits give no more than `other`: a balance and a refill no
    /// larger (what a key's credits must be to stay within its maker's).
    pub fn is_within(&self, other: &Credits) -> bool {
        let refill_ok = match (self.refill, other.refill) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(mine), Some(theirs)) => mine.amount <= theirs.amount,
        };
        self.remaining <= other.remaining && refill_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// Periods: intervals skip missed periods; daily and monthly land on midnight UTC.
    #[test]
    fn refill_instants() {
        let every = RefillPeriod::Every(Duration::from_secs(3600));
        let t0 = at("2026-01-31T10:00:00Z");
        assert_eq!(every.next_after(t0, t0), at("2026-01-31T11:00:00Z"));
        assert_eq!(
            every.next_after(t0, at("2026-01-31T15:30:00Z")),
            at("2026-01-31T16:00:00Z")
        );
        assert_eq!(
            RefillPeriod::Daily.next_after(t0, t0),
            at("2026-02-01T00:00:00Z")
        );
        assert_eq!(
            RefillPeriod::Monthly.next_after(t0, t0),
            at("2026-02-01T00:00:00Z")
        );
        assert_eq!(
            RefillPeriod::Monthly.next_after(t0, at("2026-12-15T00:00:00Z")),
            at("2027-01-01T00:00:00Z")
        );
        assert_eq!(
            "1000/daily".parse::<Refill>().unwrap().to_string(),
            "1000/daily"
        );
        assert_eq!("5/1h".parse::<Refill>().unwrap().every, every);
        for bad in ["0/daily", "5/0s", "5", "x/daily", "5/yearly"] {
            assert!(bad.parse::<Refill>().is_err(), "{bad}");
        }
    }

    proptest! {
        /// Random spends over random clocks: the balance never goes below zero, a
        /// refused spend changes nothing, and refills happen once per period (the
        /// total ever spendable is the start plus one amount per period crossed).
        #[test]
        fn never_below_zero_and_refill_once_per_period(
            start in 0u64..50,
            amount in 1u64..50,
            period_s in 1u64..100,
            steps in proptest::collection::vec((0i64..150, 0u64..8), 1..200),
        ) {
            let t0 = at("2026-03-01T00:00:00Z");
            let refill = Refill::new(amount, RefillPeriod::Every(Duration::from_secs(period_s))).unwrap();
            let mut credits = Credits::new(start).with_refill(refill, t0);
            let (mut now, mut spent, mut refills) = (t0, 0u64, 0u64);
            for (gap, cost) in steps {
                now += TimeDelta::seconds(gap);
                let before = credits;
                let due = credits.due_refill(now).is_some();
                match credits.spend(cost, now) {
                    CreditSpend::Spent { remaining } => {
                        spent += cost;
                        prop_assert_eq!(remaining, Some(credits.remaining));
                    }
                    CreditSpend::Exhausted { remaining, .. } => {
                        prop_assert!(remaining < cost);
                        if !due {
                            prop_assert_eq!(credits, before);
                        }
                    }
                    CreditSpend::Unmetered => prop_assert!(false, "credits are set"),
                }
                if due {
                    refills += 1;
                    prop_assert!(credits.due_refill(now).is_none(), "a refill is applied once");
                }
            }
            let periods = u64::try_from((now - t0).num_seconds()).unwrap() / period_s;
            prop_assert!(refills <= periods);
            prop_assert!(spent <= start + refills * amount);
        }
    }
}
