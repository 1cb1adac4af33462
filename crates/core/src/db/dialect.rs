//! What differs between the two databases in SQL text, named once for the scheduler's store
//! and the durable queue alike: the database clock, row locks for claims, picking rows by key,
//! how a list or a batch is bound, how a claiming transaction begins.

use crate::job::Millis;

/// The SQL dialect of a database. Everything else about the statements is shared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// Dates are `TIMESTAMPTZ(3)` (the queue) or `TIMESTAMP(3)` in UTC (the scheduler's
    /// Prisma-shaped tables); concurrent claimers skip each other's locked rows.
    Postgres,
    /// Dates are epoch-millisecond integers; one writer at a time.
    Sqlite,
}

/// SQLite's clock in epoch milliseconds (`'subsec'`: SQLite 3.42+).
const SQLITE_CLOCK: &str = "CAST(unixepoch('subsec') * 1000 AS INTEGER)";

impl Dialect {
    /// `"postgres"` or `"sqlite"`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Dialect::Postgres => "postgres",
            Dialect::Sqlite => "sqlite",
        }
    }

    /// The database's clock as a value of the queue's date columns (`TIMESTAMPTZ`). Leases,
    /// due times and claims compare against the database's clock, never against a host's.
    /// (PostgreSQL: `now()` is fixed for the statement's transaction; SQLite: `'now'` is fixed
    /// for the statement.)
    pub(crate) fn clock(self) -> &'static str {
        match self {
            Dialect::Postgres => "now()",
            Dialect::Sqlite => SQLITE_CLOCK,
        }
    }

    /// The same clock as a value of a `TIMESTAMP(3)` column holding UTC (the scheduler's
    /// tables, as Prisma makes them); on SQLite the one clock.
    pub(crate) fn utc_clock(self) -> &'static str {
        match self {
            Dialect::Postgres => "(now() AT TIME ZONE 'UTC')",
            Dialect::Sqlite => SQLITE_CLOCK,
        }
    }

    /// [`Dialect::clock`] moved by the milliseconds of `ms` (an expression or parameter;
    /// negative: earlier).
    pub(crate) fn clock_plus(self, ms: &str) -> String {
        self.plus(self.clock(), ms)
    }

    /// [`Dialect::utc_clock`] moved by the milliseconds of `ms`.
    pub(crate) fn utc_clock_plus(self, ms: &str) -> String {
        self.plus(self.utc_clock(), ms)
    }

    fn plus(self, date: &str, ms: &str) -> String {
        match self {
            Dialect::Postgres => {
                format!("({date} + CAST({ms} AS DOUBLE PRECISION) * INTERVAL '1 millisecond')")
            }
            Dialect::Sqlite => format!("({date} + {ms})"),
        }
    }

    /// The texts of the JSON array of strings bound at `param`, as a one-column `SELECT`.
    pub(crate) fn json_texts(self, param: &str) -> String {
        match self {
            Dialect::Postgres => {
                format!("SELECT jsonb_array_elements_text(CAST({param} AS jsonb))")
            }
            Dialect::Sqlite => format!(r#"SELECT "value" FROM json_each({param})"#),
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

/// A claim's lease as the milliseconds [`Dialect::utc_clock_plus`] binds.
pub(crate) fn lease_ms(lease: std::time::Duration) -> Millis {
    Millis::try_from(lease.as_millis()).map_or(MAX_LEASE_MS, |ms| ms.min(MAX_LEASE_MS))
}

/// The SQL type of a field of a batch bound with [`Dialect::rows`].
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Uuid,
    Text,
    Int,
}

/// The pieces the queue's statements need besides (its dates are `TIMESTAMPTZ` on PostgreSQL).
impl Dialect {
    /// A date (a column or [`Dialect::clock`]) as epoch milliseconds.
    pub(crate) fn epoch_ms(self, date: &str) -> String {
        match self {
            Dialect::Postgres => format!("CAST(EXTRACT(EPOCH FROM {date}) * 1000 AS BIGINT)"),
            Dialect::Sqlite => date.to_owned(),
        }
    }

    /// Epoch milliseconds as a date.
    pub(crate) fn date_of_ms(self, ms: &str) -> String {
        match self {
            Dialect::Postgres => format!(
                "(TIMESTAMPTZ 'epoch' + CAST({ms} AS DOUBLE PRECISION) * INTERVAL '1 millisecond')"
            ),
            Dialect::Sqlite => ms.to_owned(),
        }
    }

    /// A `UUID` or `JSON` column read as text (SQLite stores text already).
    pub(crate) fn text(self, col: &str) -> String {
        match self {
            Dialect::Postgres => format!("CAST({col} AS TEXT)"),
            Dialect::Sqlite => col.to_owned(),
        }
    }

    /// Text stored into a `JSON` column.
    pub(crate) fn json(self, text: &str) -> String {
        match self {
            Dialect::Postgres => format!("CAST({text} AS JSON)"),
            Dialect::Sqlite => text.to_owned(),
        }
    }

    /// A text parameter compared with the `UUID` id column.
    pub(crate) fn uuid(self, param: &str) -> String {
        match self {
            Dialect::Postgres => format!("CAST({param} AS UUID)"),
            Dialect::Sqlite => param.to_owned(),
        }
    }

    /// The larger of two numbers or dates.
    pub(crate) fn greater(self, a: &str, b: &str) -> String {
        match self {
            Dialect::Postgres => format!("GREATEST({a}, {b})"),
            Dialect::Sqlite => format!("max({a}, {b})"),
        }
    }

    /// The backoff in ms after `attempts`, from the table bound at `param`: a JSON array
    /// whose element n is the backoff after attempt n, up to n = 16 (see `backoff_table`).
    pub(crate) fn backoff_ms(self, param: &str, attempts: &str) -> String {
        match self {
            Dialect::Postgres => format!(
                "CAST(CAST({param} AS JSONB) ->> CAST(LEAST({attempts}, 16) AS INT) AS BIGINT)"
            ),
            Dialect::Sqlite => format!("({param} ->> min({attempts}, 16))"),
        }
    }

    /// The cheapest key of a `QueueJob` row: the primary key on PostgreSQL, the rowid on SQLite.
    pub(crate) fn row_key(self) -> &'static str {
        match self {
            Dialect::Postgres => r#""id""#,
            Dialect::Sqlite => r#""seq""#,
        }
    }

    /// After a table (and its alias) in `FROM` or `UPDATE`: walk the `QueueJob` index named
    /// (its name without the table's prefix; `id` is the unique index of the ids). SQLite's
    /// planner has no statistics and would take the listing's `("status", …)` index for
    /// every `"status" = …` term, then sort or scan; PostgreSQL's planner needs no hint.
    pub(crate) fn walk(self, index: &str) -> String {
        match self {
            Dialect::Postgres => String::new(),
            // The unique constraint on "id" is the table's first: SQLite names its index so.
            Dialect::Sqlite if index == "id" => {
                r#" INDEXED BY "sqlite_autoindex_QueueJob_1""#.into()
            }
            Dialect::Sqlite => format!(r#" INDEXED BY "QueueJob_{index}_idx""#),
        }
    }

    /// `key` is one of the keys `select` returns: the rows a statement picked first, then
    /// changes. On PostgreSQL as an array, which it always looks up in the key's index; an
    /// `IN (SELECT …)` of 100 rows it may hash-join against a scan of the whole table (below
    /// about 100,000 rows, where that scan takes longer than the whole claim otherwise does).
    pub(crate) fn among(self, key: &str, select: &str) -> String {
        match self {
            Dialect::Postgres => format!("{key} = ANY(ARRAY({select}))"),
            Dialect::Sqlite => format!("{key} IN ({select})"),
        }
    }

    /// After a `SELECT … FROM … alias …` that picks rows to change: lock them, skipping rows
    /// another worker holds. SQLite has one writer at a time and needs no row lock.
    pub(crate) fn lock_of(self, alias: &str) -> String {
        match self {
            Dialect::Postgres => format!(" FOR UPDATE OF {alias} SKIP LOCKED"),
            Dialect::Sqlite => String::new(),
        }
    }

    /// A batch bound from parameter `$first` on (see `store::db::Arg::Rows`), as a table
    /// `u` with the named fields and `jord`, each row's position. PostgreSQL binds one array
    /// per field and `unnest`s them; SQLite binds one JSON array of rows.
    pub(crate) fn rows(self, first: usize, fields: &[(&str, Kind)]) -> String {
        match self {
            Dialect::Postgres => {
                let arrays: Vec<String> = fields
                    .iter()
                    .enumerate()
                    .map(|(i, (_, k))| {
                        let t = match k {
                            Kind::Uuid => "UUID[]",
                            Kind::Text => "TEXT[]",
                            Kind::Int => "BIGINT[]",
                        };
                        format!("CAST(${} AS {t})", first + i)
                    })
                    .collect();
                let names: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
                format!(
                    "unnest({}) WITH ORDINALITY AS u({}, jord)",
                    arrays.join(", "),
                    names.join(", ")
                )
            }
            Dialect::Sqlite => {
                let cols: Vec<String> = fields
                    .iter()
                    .enumerate()
                    .map(|(i, (n, _))| format!("value ->> {i} AS {n}"))
                    .collect();
                format!(
                    "(SELECT {}, key AS jord FROM json_each(${first})) AS u",
                    cols.join(", ")
                )
            }
        }
    }
}
