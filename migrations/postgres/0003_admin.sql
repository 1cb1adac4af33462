-- The admin API's part of the `postgres` queue provider: newest-first listing walks an
-- index (backwards: ascending keys are appended at an index's right edge, which keeps it
-- dense), and pauses live in a table so every process on the queue honours them.
-- Idempotent; run after 0002_queue.sql under the same lock and search_path.
CREATE INDEX IF NOT EXISTS "QueueJob_created_idx" ON "QueueJob" ("createdAt", "id");
CREATE INDEX IF NOT EXISTS "QueueJob_status_created_idx" ON "QueueJob" ("status", "createdAt", "id");
CREATE INDEX IF NOT EXISTS "QueueJob_type_created_idx" ON "QueueJob" ("type", "createdAt", "id");
-- Earlier builds' descending listing indexes (new rows went in at their left edge).
DROP INDEX IF EXISTS "QueueJob_list_idx";
DROP INDEX IF EXISTS "QueueJob_status_list_idx";
-- One row per paused job type; the type '' pauses every type.
CREATE TABLE IF NOT EXISTS "QueueJobPause" (
    "type" TEXT NOT NULL,
    "pausedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT now(),
    CONSTRAINT "QueueJobPause_pkey" PRIMARY KEY ("type")
);
