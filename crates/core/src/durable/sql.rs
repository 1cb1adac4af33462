//! The `QueueJob` statements, written once for both databases: each operation is one SQL text
//! built from the [`Dialect`]'s named pieces (`db::dialect`), bound the same way through `db`.

use crate::db::dialect::{Dialect, Kind};

/// Every statement the queue runs, made once for its dialect and table.
pub(super) struct Statements {
    /// Jobs of which some carry a deduplication key.
    pub insert: String,
    /// Jobs none of which carries a deduplication key.
    pub insert_plain: String,
    pub by_keys: String,
    /// The jobs of these ids (the cross-process event listener's read).
    pub by_ids: String,
    pub claim: String,
    pub next_due: String,
    pub complete: String,
    pub fail: String,
    pub release: String,
    pub progress: String,
    pub extend: String,
    pub reap: String,
    pub purge: String,
    /// PostgreSQL: reclaim the purged rows' space when the server's autovacuum will not
    /// (`None` on SQLite, whose freed pages are reused as they are).
    pub vacuum: Option<String>,
    pub get: String,
    pub stats: String,
    /// By [`list_variant`]: each filter is either in the text or absent from it, so every
    /// variant walks one index whatever the plan cache does with its parameters.
    pub list: [String; 8],
    pub retry: String,
    pub cancel: String,
    pub pause: String,
    pub unpause: String,
    pub unpause_all: String,
    pub paused: String,
}

/// The status callers see: a delayed or backing-off job that is due is `pending`.
fn shown_status(d: Dialect, p: &str) -> String {
    format!(
        r#"CASE WHEN {p}"status" IN ('scheduled', 'failed') AND {p}"runAt" <= {now} THEN 'pending' ELSE {p}"status" END"#,
        now = d.clock()
    )
}

/// The job columns `job_from_row` reads (text, integers, floats; dates as epoch ms).
fn cols(d: Dialect) -> String {
    let ms = |c: &str| d.epoch_ms(&format!(r#""{c}""#));
    format!(
        r#"{id} AS "id", "type", {payload} AS "payload", {options} AS "options", {status} AS "status",
        "attempts", "deliveries", "priority", "seq", {run_at} AS "runAt", {created} AS "createdAt",
        {sched} AS "scheduledFor", {started} AS "startedAt", {completed} AS "completedAt",
        "lastError", "progress", {result} AS "result""#,
        id = d.text(r#""id""#),
        payload = d.text(r#""payload""#),
        options = d.text(r#""options""#),
        status = shown_status(d, ""),
        run_at = ms("runAt"),
        created = ms("createdAt"),
        sched = ms("scheduledFor"),
        started = ms("startedAt"),
        completed = ms("completedAt"),
        result = d.text(r#""result""#),
    )
}

/// The fields of a job to insert, in `Arg::Rows` order.
pub(super) const INSERT_FIELDS: [(&str, Kind); 9] = [
    ("jid", Kind::Uuid),
    ("jtype", Kind::Text),
    ("jpayload", Kind::Text),
    ("joptions", Kind::Text),
    ("jprio", Kind::Int),
    ("jretries", Kind::Int),
    ("jdelay", Kind::Int),
    ("jsched", Kind::Int),
    ("jkey", Kind::Text),
];

/// `INSERT … SELECT` of the jobs in `source` (a table `u` with [`INSERT_FIELDS`] and
/// `jord`), in input order. With `dedup`, rows whose deduplication key an unfinished job
/// holds are skipped; without, no row may carry a key (no conflict is possible, and the
/// speculative insertion `ON CONFLICT` costs per row is saved).
pub(super) fn insert_from(
    d: Dialect,
    t: &str,
    source: &str,
    returning: &str,
    dedup: bool,
) -> String {
    let now = d.clock();
    let on_conflict = if dedup { "ON CONFLICT DO NOTHING" } else { "" };
    format!(
        r#"INSERT INTO {t} ("id", "type", "payload", "options", "status", "priority", "maxRetries", "runAt", "scheduledFor", "deduplicationKey", "createdAt")
        SELECT v.jid, v.jtype, {payload}, {options}, CASE WHEN v.at > {now} THEN 'scheduled' ELSE 'pending' END,
            v.jprio, v.jretries, {run_at}, CASE WHEN v.at > {now} THEN v.at END, v.jkey, {now}
        FROM (SELECT u.*, COALESCE({sched}, {delayed}) AS at FROM {source}) AS v
        WHERE true ORDER BY v.jord
        {on_conflict}
        RETURNING {returning}"#,
        payload = d.json("v.jpayload"),
        options = d.json("v.joptions"),
        run_at = d.greater("v.at", now),
        sched = d.date_of_ms("u.jsched"),
        delayed = d.clock_plus("COALESCE(u.jdelay, 0)"),
    )
}

/// Which of [`Statements::list`] serves a listing with these filters.
pub(super) fn list_variant(status: bool, job_type: bool, cursor: bool) -> usize {
    usize::from(status) | usize::from(job_type) << 1 | usize::from(cursor) << 2
}

/// The listing of variant `v` (see [`list_variant`]): newest first, at most $5 rows. $1 the
/// status, $2 the type, $3/$4 the cursor's (createdAt in epoch ms, id); a parameter whose filter
/// the variant lacks is NULL and tested only as such (a constant, no row condition).
/// ORDER BY names the table's columns (l."createdAt"): a bare "createdAt" is the output column,
/// epoch ms on PostgreSQL, which no index has (1M jobs sorted a page). The indexes are
/// ascending and walked backwards (ascending keys appended at the right keep them dense).
fn list_sql(d: Dialect, t: &str, cols: &str, v: usize) -> String {
    let on = |bit: usize| v & bit != 0;
    let status = if on(1) {
        r#"l."status" = $1"#
    } else {
        "$1 IS NULL"
    };
    let job_type = if on(2) {
        r#"l."type" = $2"#
    } else {
        "$2 IS NULL"
    };
    let cursor = if on(4) {
        format!(
            r#"(l."createdAt", l."id") < ({at}, {id})"#,
            at = d.date_of_ms("$3"),
            id = d.uuid("$4"),
        )
    } else {
        "$3 IS NULL AND $4 IS NULL".to_owned()
    };
    format!(
        r#"SELECT {cols} FROM {t} AS l{walk}
        WHERE {status} AND {job_type} AND {cursor}
        ORDER BY l."createdAt" DESC, l."id" DESC LIMIT $5"#,
        walk = d.walk(if on(2) { "type_created" } else { "created" }),
    )
}

impl Statements {
    /// The statements on table `t` with pauses in `tp` (both quoted, schema-qualified on PostgreSQL).
    pub(super) fn new(d: Dialect, t: &str, tp: &str) -> Statements {
        let c = cols(d);
        let now = d.clock();
        let key = d.row_key();
        let lease = |f: &'static str| [("jid", Kind::Uuid), ("jd", Kind::Int), (f, Kind::Text)];
        let settled = format!(r#"{} AS "id", "deliveries""#, d.text(r#""id""#));
        let inserted = format!(
            r#"{id} AS "id", {status} AS "status", {created} AS "createdAt", {sched} AS "scheduledFor""#,
            id = d.text(r#""id""#),
            // A new row is never `failed`: the shown status of a scheduled one.
            status = shown_status(d, ""),
            created = d.epoch_ms(r#""createdAt""#),
            sched = d.epoch_ms(r#""scheduledFor""#),
        );
        Statements {
            insert: insert_from(d, t, &d.rows(1, &INSERT_FIELDS), &inserted, true),
            insert_plain: insert_from(d, t, &d.rows(1, &INSERT_FIELDS), &inserted, false),
            by_keys: format!(
                r#"SELECT {c} FROM {t} WHERE "deduplicationKey" IN (SELECT u.jkey FROM {rows})
                AND "status" NOT IN ('completed', 'dead')"#,
                rows = d.rows(1, &[("jkey", Kind::Text)]),
            ),
            by_ids: format!(
                r#"SELECT {c} FROM {t} WHERE "id" IN (SELECT u.jid FROM {rows})"#,
                rows = d.rows(1, &[("jid", Kind::Uuid)]),
            ),
            // The chosen rows are materialised first, so the lock is taken once per claim.
            claim: format!(
                r#"WITH c AS MATERIALIZED (
                    SELECT q.{key} AS cid FROM {t} q{walk}
                    WHERE q."status" IN ('pending', 'scheduled', 'failed') AND q."runAt" <= {now}
                        -- Pauses: both subqueries run once per claim (a one-time filter, a hashed
                        -- set), and the claim still walks its index.
                        AND NOT EXISTS (SELECT 1 FROM {tp} WHERE "type" = '')
                        AND q."type" NOT IN (SELECT "type" FROM {tp})
                    ORDER BY q."priority", q."runAt", q."seq" LIMIT $1{lock})
                UPDATE {t} SET "status" = 'processing', "attempts" = "attempts" + 1,
                    "deliveries" = "deliveries" + 1, "startedAt" = {now}, "lockedUntil" = {until}
                WHERE {picked}
                RETURNING {c}"#,
                lock = d.lock_of("q"),
                walk = d.walk("claim"),
                until = d.clock_plus("$2"),
                picked = d.among(key, "SELECT cid FROM c"),
            ),
            next_due: format!(
                r#"SELECT {} - {} AS "ms" FROM {t}{} WHERE "status" IN ('scheduled', 'failed')"#,
                d.epoch_ms(r#"min("runAt")"#),
                d.epoch_ms(now),
                d.walk("delayed"),
            ),
            complete: format!(
                r#"UPDATE {t}{by_id} SET "status" = 'completed', "result" = {res}, "completedAt" = {now}, "lockedUntil" = NULL
                FROM {rows}
                WHERE "id" = u.jid AND "deliveries" = u.jd AND "status" = 'processing'
                RETURNING {settled}"#,
                res = d.json("u.jres"),
                rows = d.rows(1, &lease("jres")),
                by_id = d.walk("id"),
            ),
            // $1 is the backoff table (JSON): element n is the backoff after attempt n.
            fail: format!(
                r#"UPDATE {t}{by_id} SET "lastError" = u.jerr, "lockedUntil" = NULL,
                    "status" = CASE WHEN "attempts" <= "maxRetries" THEN 'failed' ELSE 'dead' END,
                    "runAt" = CASE WHEN "attempts" <= "maxRetries" THEN {backoff} ELSE "runAt" END,
                    "completedAt" = CASE WHEN "attempts" <= "maxRetries" THEN NULL ELSE {now} END
                FROM {rows}
                WHERE "id" = u.jid AND "deliveries" = u.jd AND "status" = 'processing'
                RETURNING {settled}"#,
                backoff = d.clock_plus(&d.backoff_ms("$1", r#""attempts""#)),
                rows = d.rows(2, &lease("jerr")),
                by_id = d.walk("id"),
            ),
            release: format!(
                r#"UPDATE {t} SET "status" = 'pending', "attempts" = {attempts}, "lockedUntil" = NULL
                WHERE "id" = {id} AND "deliveries" = $2 AND "status" = 'processing'"#,
                attempts = d.greater(r#""attempts" - 1"#, "0"),
                id = d.uuid("$1"),
            ),
            progress: format!(
                r#"UPDATE {t} SET "progress" = $3 WHERE "id" = {} AND "deliveries" = $2"#,
                d.uuid("$1")
            ),
            // Rows being settled are skipped, not waited for.
            extend: format!(
                r#"WITH s AS MATERIALIZED (
                    SELECT x.{key} AS sid FROM {t} x{by_id} JOIN {rows} ON x."id" = u.jid AND x."deliveries" = u.jd
                    WHERE x."status" = 'processing'{lock})
                UPDATE {t} SET "lockedUntil" = {until} WHERE {picked}
                RETURNING {settled}"#,
                rows = d.rows(2, &[("jid", Kind::Uuid), ("jd", Kind::Int)]),
                by_id = d.walk("id"),
                lock = d.lock_of("x"),
                until = d.clock_plus("$1"),
                picked = d.among(key, "SELECT sid FROM s"),
            ),
            reap: format!(
                r#"WITH r AS MATERIALIZED (
                    SELECT x.{key} AS rid FROM {t} x{walk} WHERE x."status" = 'processing' AND x."lockedUntil" <= {now}
                    LIMIT 1000{lock})
                UPDATE {t} SET "lockedUntil" = NULL,
                    "status" = CASE WHEN "attempts" <= "maxRetries" THEN 'pending' ELSE 'dead' END,
                    "completedAt" = CASE WHEN "attempts" <= "maxRetries" THEN NULL ELSE {now} END,
                    "lastError" = 'lease expired: the worker running this job stopped renewing its lease (crashed or lost)'
                WHERE {picked}
                RETURNING {c}"#,
                lock = d.lock_of("x"),
                walk = d.walk("lease"),
                picked = d.among(key, "SELECT rid FROM r"),
            ),
            // $1: 'completed' or 'dead'; $2: minus the retention in ms. (The IN list is the
            // index's own condition, which SQLite must see to use a partial index.)
            purge: format!(
                r#"DELETE FROM {t} WHERE {picked}"#,
                picked = d.among(
                    key,
                    &format!(
                        r#"SELECT {key} FROM {t} f{walk}
                    WHERE "status" IN ('completed', 'dead', 'cancelled') AND "status" = $1 AND "completedAt" < {before} LIMIT $3{lock}"#,
                        before = d.clock_plus("$2"),
                        walk = d.walk("done"),
                        // Purgers in several processes share the work instead of queueing on rows.
                        lock = d.lock_of("f"),
                    )
                ),
            ),
            vacuum: match d {
                Dialect::Postgres => Some(format!("VACUUM {t}")),
                Dialect::Sqlite => None,
            },
            get: format!(r#"SELECT {c} FROM {t} WHERE "id" = {}"#, d.uuid("$1")),
            stats: format!(
                r#"SELECT {} AS "s", count(*) AS "n" FROM {t} GROUP BY 1"#,
                shown_status(d, "")
            ),
            list: std::array::from_fn(|v| list_sql(d, t, &c, v)),
            // A dead job gives up its deduplication key for good: another job may hold it now.
            retry: format!(
                r#"UPDATE {t} SET "status" = 'pending', "runAt" = {now}, "completedAt" = NULL, "lockedUntil" = NULL,
                    "deduplicationKey" = CASE WHEN "status" = 'dead' THEN NULL ELSE "deduplicationKey" END
                WHERE "id" = {} AND "status" IN ('dead', 'failed')"#,
                d.uuid("$1")
            ),
            cancel: format!(
                r#"UPDATE {t} SET "status" = 'cancelled', "completedAt" = {now}, "lockedUntil" = NULL, "deduplicationKey" = NULL
                WHERE "id" = {} AND "status" IN ('pending', 'scheduled', 'failed', 'processing')"#,
                d.uuid("$1")
            ),
            pause: format!(
                r#"INSERT INTO {tp} ("type", "pausedAt") VALUES ($1, {now}) ON CONFLICT DO NOTHING"#
            ),
            unpause: format!(r#"DELETE FROM {tp} WHERE "type" = $1"#),
            unpause_all: format!(r#"DELETE FROM {tp}"#),
            paused: format!(r#"SELECT "type" FROM {tp} ORDER BY "type""#),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Row;

    /// Every statement SQLite runs on the hot path walks an index, in order: no scan of the
    /// table, no sort (SQLite has no statistics; without its hints it took the wrong index
    /// and sorted on every claim, 1,500 no-op jobs/s instead of 20,000).
    #[tokio::test]
    async fn sqlite_statements_walk_their_indexes() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        let queue = crate::db::migrate::QUEUE.iter().map(|m| m.sqlite);
        sqlx::raw_sql(&queue.collect::<Vec<_>>().join("\n"))
            .execute(&pool)
            .await
            .unwrap();
        // A lure: with no statistics SQLite takes any index on "status" for `"status" = …`
        // (the listing index of earlier builds did this); the hints must hold against it.
        sqlx::raw_sql(r#"CREATE INDEX "QueueJob_status_lure" ON "QueueJob" ("status")"#)
            .execute(&pool)
            .await
            .unwrap();
        sqlx::raw_sql(
            r#"WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 2000)
            INSERT INTO "QueueJob" ("id", "type", "payload", "options", "status", "maxRetries", "runAt", "createdAt", "completedAt", "lockedUntil")
            SELECT 'id-' || n, 't' || (n % 4), '{}', '{}',
                CASE n % 4 WHEN 0 THEN 'pending' WHEN 1 THEN 'processing' WHEN 2 THEN 'completed' ELSE 'failed' END,
                3, n, n, n, n FROM g"#,
        )
        .execute(&pool)
        .await
        .unwrap();
        let s = Statements::new(Dialect::Sqlite, r#""QueueJob""#, r#""QueueJobPause""#);
        let hot = [
            ("claim", &s.claim, "QueueJob_claim_idx"),
            ("next_due", &s.next_due, "QueueJob_delayed_idx"),
            ("complete", &s.complete, "sqlite_autoindex_QueueJob_1"),
            ("fail", &s.fail, "sqlite_autoindex_QueueJob_1"),
            ("extend", &s.extend, "sqlite_autoindex_QueueJob_1"),
            ("reap", &s.reap, "QueueJob_lease_idx"),
            ("purge", &s.purge, "QueueJob_done_idx"),
            ("get", &s.get, "sqlite_autoindex_QueueJob_1"),
        ];
        let list: Vec<(String, &String, &str)> = (0..8)
            .map(|v| {
                let index = if v & 2 != 0 {
                    "QueueJob_type_created_idx"
                } else {
                    "QueueJob_created_idx"
                };
                (format!("list variant {v}"), &s.list[v], index)
            })
            .collect();
        let hot = hot
            .iter()
            .map(|(n, q, i)| (n.to_string(), *q, *i))
            .chain(list);
        for (name, sql, index) in hot {
            let plan: Vec<String> = sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
                .fetch_all(&pool)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .iter()
                .map(|r| r.get::<String, _>(3))
                .collect();
            let text = plan.join("\n");
            assert!(
                text.contains(index),
                "{name} does not walk {index}:\n{text}"
            );
            assert!(!text.contains("TEMP B-TREE"), "{name} sorts:\n{text}");
            for line in &plan {
                let on_jobs = line.contains(" q ")
                    || line.contains(" x ")
                    || line.contains("QueueJob ")
                    || line.ends_with(" q")
                    || line.ends_with(" x");
                if line.starts_with("SCAN") && on_jobs {
                    assert!(
                        line.contains("USING"),
                        "{name} scans the table: {line}\n{text}"
                    );
                }
            }
        }
    }
}
