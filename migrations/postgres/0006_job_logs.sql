-- Handlers' log lines (ctx.log): one row per line of one hand-out ("delivery") of a job; the
-- row (delivery 0, seq 0) counts the lines the per-job cap dropped. Deleted with its job, so
-- retention and every other delete take the lines along.
CREATE TABLE IF NOT EXISTS "QueueJobLog" (
    "jobId" UUID NOT NULL REFERENCES "QueueJob" ("id") ON DELETE CASCADE,
    "delivery" BIGINT NOT NULL,
    "seq" BIGINT NOT NULL,
    "attempt" BIGINT NOT NULL,
    "at" BIGINT NOT NULL,
    "line" TEXT NOT NULL,
    "dropped" BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT "QueueJobLog_pkey" PRIMARY KEY ("jobId", "delivery", "seq")
);
