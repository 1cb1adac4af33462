-- Handlers' log lines (ctx.log): one row per line of one hand-out ("delivery") of a job; the
-- row (delivery 0, seq 0) counts the lines the per-job cap dropped. Deleted with its job (the
-- connections enforce foreign keys), so retention and every other delete take the lines along.
CREATE TABLE IF NOT EXISTS "QueueJobLog" (
    "jobId" TEXT NOT NULL REFERENCES "QueueJob" ("id") ON DELETE CASCADE,
    "delivery" INTEGER NOT NULL,
    "seq" INTEGER NOT NULL,
    "attempt" INTEGER NOT NULL,
    "at" INTEGER NOT NULL,
    "line" TEXT NOT NULL,
    "dropped" INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY ("jobId", "delivery", "seq")
);
