//! Handlers' log lines (`ctx.log`) on PostgreSQL and SQLite: the `"QueueJobLog"` table, one
//! row per line, kept under the cap of [`crate::joblog`] and deleted with its job (a foreign
//! key `ON DELETE CASCADE`, so retention and every other delete take the lines along).

//! The table is made by the ledger migration `0006_job_logs`.

use super::{Lease, Table};
use crate::db::dialect::{Dialect, Kind};
use crate::db::{Arg, Column};
use crate::error::Result;
use crate::joblog::{JobLogs, LogLine, MAX_LOG_BYTES, MAX_LOG_LINES};
use crate::lock;
use std::sync::Mutex;
use uuid::Uuid;

/// Lines waiting to be written, and whether a call is writing them (see [`JobLog::append`]).
#[derive(Default)]
struct LogQueue {
    waiting: Vec<(Lease, LogLine)>,
    writing: bool,
}

/// The log lines of one durable queue: its table, its schema (PostgreSQL; empty on SQLite) and
/// the lines waiting for their batch.
pub(super) struct JobLog<'a> {
    table: &'a Table,
    schema: &'a str,
    queue: &'a Mutex<LogQueue>,
}

/// The batch state a queue keeps for [`JobLog`].
#[derive(Default)]
pub(super) struct LogBatches(Mutex<LogQueue>);

impl LogBatches {
    /// The log lines of the queue over `table` (in `schema` on PostgreSQL).
    pub(super) fn of<'a>(&'a self, table: &'a Table, schema: &'a str) -> JobLog<'a> {
        JobLog {
            table,
            schema,
            queue: &self.0,
        }
    }
}

/// While every line is at most this long and there are at most [`MAX_LOG_LINES`] of one
/// hand-out, the byte cap cannot be reached: an insert then needs no pruning statement.
const SHORT_LINE: usize = MAX_LOG_BYTES / MAX_LOG_LINES;

impl JobLog<'_> {
    fn log_table(&self) -> String {
        match self.table.dialect {
            Dialect::Postgres => {
                format!(r#""{}"."QueueJobLog""#, self.schema.replace('"', r#""""#))
            }
            Dialect::Sqlite => r#""QueueJobLog""#.to_owned(),
        }
    }

    fn jobs_table(&self) -> String {
        match self.table.dialect {
            Dialect::Postgres => format!(r#""{}"."QueueJob""#, self.schema.replace('"', r#""""#)),
            Dialect::Sqlite => r#""QueueJob""#.to_owned(),
        }
    }

    fn id_param(&self) -> &'static str {
        match self.table.dialect {
            Dialect::Postgres => "CAST($1 AS UUID)",
            Dialect::Sqlite => "$1",
        }
    }

    /// Store one line of the attempt `lease`. Lines are written in batches: the call that
    /// finds no write under way writes every line waiting (one `INSERT` of many rows), again
    /// until none is left; a call made meanwhile only adds its line to the next batch. Then,
    /// for each job whose cap may be passed, the oldest lines past it are dropped and counted.
    pub(super) async fn append(&self, lease: Lease, line: LogLine) -> Result<()> {
        {
            let mut q = lock(self.queue);
            q.waiting.push((lease, line));
            if q.writing {
                return Ok(());
            }
            q.writing = true;
        }
        loop {
            let batch = {
                let mut q = lock(self.queue);
                if q.waiting.is_empty() {
                    q.writing = false;
                    return Ok(());
                }
                std::mem::take(&mut q.waiting)
            };
            if let Err(e) = self.write_logs(&batch).await {
                lock(self.queue).writing = false;
                return Err(e);
            }
        }
    }

    /// One batch of lines: the insert, then the pruning of the jobs that may pass the cap.
    async fn write_logs(&self, batch: &[(Lease, LogLine)]) -> Result<()> {
        let t = self.log_table();
        let ids: Vec<String> = batch
            .iter()
            .map(|(l, _)| l.id.hyphenated().to_string())
            .collect();
        let cols = [
            Column::Text(ids.iter().map(String::as_str).collect()),
            Column::Int(batch.iter().map(|(l, _)| l.delivery).collect()),
            Column::Int(batch.iter().map(|(_, x)| i64::from(x.seq)).collect()),
            Column::Int(batch.iter().map(|(_, x)| i64::from(x.attempt)).collect()),
            Column::Int(batch.iter().map(|(_, x)| x.at).collect()),
            Column::Text(batch.iter().map(|(_, x)| x.line.as_str()).collect()),
        ];
        let rows = self.table.dialect.rows(
            1,
            &[
                ("jid", Kind::Uuid),
                ("jd", Kind::Int),
                ("js", Kind::Int),
                ("ja", Kind::Int),
                ("jat", Kind::Int),
                ("jline", Kind::Text),
            ],
        );
        // Only lines of jobs that still exist (one deleted meanwhile would fail the batch).
        let insert = format!(
            r#"INSERT INTO {t} ("jobId", "delivery", "seq", "attempt", "at", "line")
               SELECT u.jid, u.jd, u.js, u.ja, u.jat, u.jline FROM {rows}
               WHERE EXISTS (SELECT 1 FROM {jobs} j WHERE j."id" = u.jid)
               ON CONFLICT DO NOTHING"#,
            jobs = self.jobs_table(),
        );
        self.table
            .write(
                &self.table.work,
                &insert,
                &[Arg::Rows(&cols)],
                "storing log lines",
            )
            .await?;
        let mut prune: Vec<&str> = batch
            .iter()
            .zip(&ids)
            .filter(|((l, x), _)| {
                x.seq as usize > MAX_LOG_LINES || l.delivery > 1 || x.line.len() > SHORT_LINE
            })
            .map(|(_, id)| id.as_str())
            .collect();
        prune.sort_unstable();
        prune.dedup();
        for id in prune {
            self.prune_logs(id, batch[0].1.at).await?;
        }
        Ok(())
    }

    /// Drop the job's oldest lines past the cap and add them to its dropped count.
    async fn prune_logs(&self, id: &str, at: i64) -> Result<()> {
        let (t, id_p) = (self.log_table(), self.id_param());
        let octets = match self.table.dialect {
            Dialect::Postgres => r#"octet_length("line")"#,
            Dialect::Sqlite => r#"length(CAST("line" AS BLOB))"#,
        };
        let prune = format!(
            r#"DELETE FROM {t} WHERE "jobId" = {id_p} AND "seq" > 0 AND ("delivery", "seq") IN (
                 SELECT k."delivery", k."seq" FROM (
                   SELECT "delivery", "seq",
                     ROW_NUMBER() OVER (ORDER BY "delivery" DESC, "seq" DESC) AS n,
                     SUM({octets}) OVER (ORDER BY "delivery" DESC, "seq" DESC ROWS UNBOUNDED PRECEDING) AS b
                   FROM {t} WHERE "jobId" = {id_p} AND "seq" > 0) k
                 WHERE k.n > $2 OR k.b > $3)"#
        );
        let limits = [
            Arg::Text(id),
            Arg::Int(MAX_LOG_LINES as i64),
            Arg::Int(MAX_LOG_BYTES as i64),
        ];
        let dropped = self
            .table
            .write(&self.table.work, &prune, &limits, "pruning log lines")
            .await?;
        if dropped > 0 {
            let count = format!(
                r#"INSERT INTO {t} AS m ("jobId", "delivery", "seq", "attempt", "at", "line", "dropped") VALUES ({id_p}, 0, 0, 0, $2, '', $3)
                   ON CONFLICT ("jobId", "delivery", "seq") DO UPDATE SET "dropped" = m."dropped" + excluded."dropped""#
            );
            let args = [
                Arg::Text(id),
                Arg::Int(at),
                Arg::Int(i64::try_from(dropped).unwrap_or(i64::MAX)),
            ];
            self.table
                .write(
                    &self.table.work,
                    &count,
                    &args,
                    "counting dropped log lines",
                )
                .await?;
        }
        Ok(())
    }

    /// The job's lines in order (hand-out, then place in it); `None` when there is no such job.
    pub(super) async fn read(&self, id: Uuid) -> Result<Option<JobLogs>> {
        let (t, id_p) = (self.log_table(), self.id_param());
        let sql = format!(
            r#"SELECT "seq", "attempt", "at", "line", "dropped" FROM {t} WHERE "jobId" = {id_p} ORDER BY "delivery", "seq""#
        );
        let text = id.hyphenated().to_string();
        let rows = self
            .table
            .fetch(
                &self.table.pool,
                &sql,
                &[Arg::Text(&text)],
                "reading log lines",
            )
            .await?;
        if rows.is_empty() && self.table.by_ids(&[id]).await?.is_empty() {
            return Ok(None);
        }
        let mut logs = JobLogs::default();
        for r in rows {
            let seq: i64 = r.get("seq")?;
            if seq == 0 {
                logs.dropped = u64::try_from(r.get::<i64>("dropped")?).unwrap_or(0);
                continue;
            }
            logs.lines.push(LogLine {
                at: r.get("at")?,
                attempt: u32::try_from(r.get::<i64>("attempt")?).unwrap_or(0),
                seq: u32::try_from(seq).unwrap_or(0),
                line: r.get("line")?,
            });
        }
        Ok(Some(logs))
    }
}
