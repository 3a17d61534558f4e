//! keyroute's own warnings during a run (a last-used batch that failed, a feed that
//! was lost, a unit that did not commit): keyroute reports them through `tracing`,
//! so the run installs a subscriber that counts every event at `WARN` or above by
//! its message and keeps the first one's full text.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber, span};

/// Counts per message: how many, and the first one in full.
type Counted = BTreeMap<String, (u64, String)>;

/// The warnings seen since the last [`Warnings::take`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Warnings(Arc<Mutex<Counted>>);

impl Warnings {
    /// Installs a subscriber that counts into the returned [`Warnings`], for the whole
    /// process.
    ///
    /// # Errors
    /// When another subscriber is installed already.
    pub(crate) fn install() -> Result<Self, tracing::subscriber::SetGlobalDefaultError> {
        let warnings = Self::default();
        tracing::subscriber::set_global_default(Counter(warnings.clone()))?;
        Ok(warnings)
    }

    /// The warnings counted so far, by message; counting starts again.
    pub(crate) fn take(&self) -> Counted {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The subscriber: events at `WARN` and `ERROR`, no spans.
struct Counter(Warnings);

impl Subscriber for Counter {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= Level::WARN
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut text = Text::default();
        event.record(&mut text);
        let mut counted = (self.0).0.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = counted
            .entry(text.message)
            .or_insert_with(|| (0, text.fields));
        entry.0 += 1;
    }

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}

/// An event's message, and its other fields as `name=value`.
#[derive(Default)]
struct Text {
    message: String,
    fields: String,
}

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, "{}={value:?} ", field.name());
        }
    }
}
