//! Database errors as backend-independent [`StoreError`] kinds.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use keyroute_core::StoreError;

/// Maps a diesel error to the backend-independent [`StoreError`].
pub(crate) fn map_error(error: DieselError) -> StoreError {
    match &error {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            let what = info.constraint_name().unwrap_or_else(|| info.message());
            StoreError::Conflict(conflict_message(what))
        }
        DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
            StoreError::Conflict("the key's owner does not exist".into())
        }
        // The connection went away under the query (the server stopped or restarted,
        // the network dropped): the database is unavailable, not refusing the query.
        // Without a SQLSTATE, diesel-async reports a lost PostgreSQL connection as
        // `UnableToSendCommand`; a server shutting down says so (57P01, 57P02, 57P03).
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => StoreError::unavailable(error),
        DieselError::DatabaseError(_, info) if is_shutdown(info.message()) => {
            StoreError::unavailable(error)
        }
        DieselError::DeserializationError(e) => StoreError::InvalidData(e.to_string()),
        _ => StoreError::database(error),
    }
}

/// Whether a server error says the server is shutting down or starting up.
fn is_shutdown(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    message.contains("terminating connection due to administrator command")
        || message.contains("the database system is shutting down")
        || message.contains("the database system is starting up")
        || message.contains("server shutdown in progress")
        // A backend whose postmaster died (`docker stop` racing a query), and one
        // told to quit because another backend crashed (57P02).
        || message.contains("terminating connection due to unexpected postmaster exit")
        || message.contains("terminating connection because of crash of another server process")
}

/// A message naming what was duplicated, from the constraint (or the database's
/// message, which names it): never the duplicated value, which may be a key hash.
fn conflict_message(what: &str) -> String {
    let what = what.to_ascii_lowercase();
    let subject = if what.contains("hash") {
        "a key with the same hash"
    } else if what.contains("user_name") {
        "a user with that user name"
    } else if what.contains("api_keys") {
        "a key with that id"
    } else if what.contains("users") {
        "a user with that id"
    } else if what.contains("primary") {
        "a record with that id"
    } else {
        "a record with a unique value"
    };
    format!("{subject} already exists")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every way PostgreSQL says the server went away is a shutdown, not a refusal.
    #[test]
    fn server_going_away_is_a_shutdown() {
        for message in [
            "terminating connection due to administrator command",
            "terminating connection due to unexpected postmaster exit",
            "terminating connection because of crash of another server process",
            "FATAL: the database system is shutting down",
        ] {
            assert!(is_shutdown(message), "{message}");
        }
        assert!(!is_shutdown("relation \"orders\" does not exist"));
    }

    /// Conflict messages name the rule, never the value.
    #[test]
    fn conflicts_name_the_rule() {
        assert_eq!(
            conflict_message("keyroute_api_keys_hash_key"),
            "a key with the same hash already exists"
        );
        assert_eq!(
            conflict_message("UNIQUE constraint failed: keyroute_users.user_name"),
            "a user with that user name already exists"
        );
        assert_eq!(
            conflict_message("keyroute_api_keys_pkey"),
            "a key with that id already exists"
        );
    }
}
