//! What differs between the scheduler's two databases in SQL text, named once: the database
//! clock, row locks for claims, how a list of ids is bound, how a claiming transaction begins.

use crate::job::Millis;

/// The SQL dialect of a scheduler database. Everything else about the statements is shared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// Dates are `TIMESTAMP(3)` in UTC; concurrent claimers skip each other's locked rows.
    Postgres,
    /// Dates are epoch-millisecond integers; one writer at a time.
    Sqlite,
}

impl Dialect {
    /// `"postgres"` or `"sqlite"`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Dialect::Postgres => "postgres",
            Dialect::Sqlite => "sqlite",
        }
    }

    /// The database's clock, as a value of the date columns. Claims and leases compare
    /// against this, never against the host's clock. (PostgreSQL: `now()` is fixed for the
    /// statement's transaction; SQLite: `'now'` is fixed for the statement.)
    pub(crate) fn now(self) -> &'static str {
        match self {
            Dialect::Postgres => "(now() AT TIME ZONE 'UTC')",
            Dialect::Sqlite => {
                "CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)"
            }
        }
    }

    /// The database's clock moved by the milliseconds bound at `param` (negative: earlier).
    pub(crate) fn now_plus(self, param: &str) -> String {
        match self {
            Dialect::Postgres => format!(
                "({} + CAST({param} AS DOUBLE PRECISION) * INTERVAL '1 millisecond')",
                self.now()
            ),
            Dialect::Sqlite => format!("({} + {param})", self.now()),
        }
    }

    /// After a claim's `SELECT … LIMIT n`: lock the rows taken, skipping rows another claimer
    /// holds. SQLite runs one writer at a time, so a claim there needs no row lock.
    pub(crate) fn skip_locked(self) -> &'static str {
        match self {
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        }
    }

    /// A condition: `"id"` is one of the JSON array of strings bound at `param`. On
    /// PostgreSQL the array is built first, so the lookup goes through the primary key.
    pub(crate) fn id_in_json(self, param: &str) -> String {
        match self {
            Dialect::Postgres => format!(
                r#""id" = ANY(ARRAY(SELECT jsonb_array_elements_text(CAST({param} AS jsonb))))"#
            ),
            Dialect::Sqlite => format!(r#""id" IN (SELECT "value" FROM json_each({param}))"#),
        }
    }

    /// A condition: `"id"` is one of the ids `select` returns. On PostgreSQL as an array built
    /// first, so the lookup goes through the primary key.
    pub(crate) fn id_in_select(self, select: &str) -> String {
        match self {
            Dialect::Postgres => format!(r#""id" = ANY(ARRAY({select}))"#),
            Dialect::Sqlite => format!(r#""id" IN ({select})"#),
        }
    }

    /// How a claim that reads, then writes, begins its transaction. SQLite takes the write
    /// lock up front, so no other writer can commit between the read and the write.
    pub(crate) fn begin_claim(self) -> &'static str {
        match self {
            Dialect::Postgres => "BEGIN",
            Dialect::Sqlite => "BEGIN IMMEDIATE",
        }
    }
}

/// Longest lease a claim takes (ten years), so `now + lease` stays a valid date.
const MAX_LEASE_MS: Millis = 10 * 366 * 24 * 3_600_000;

/// A claim's lease as the milliseconds [`Dialect::now_plus`] binds.
pub(crate) fn lease_ms(lease: std::time::Duration) -> Millis {
    Millis::try_from(lease.as_millis()).map_or(MAX_LEASE_MS, |ms| ms.min(MAX_LEASE_MS))
}
