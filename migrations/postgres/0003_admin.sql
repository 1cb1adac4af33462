-- The admin API's part of the `postgres` queue provider: newest-first listing walks an
-- index, and pauses live in a table so every process on the queue honours them.
-- Idempotent; run after 0002_queue.sql under the same lock and search_path.
CREATE INDEX IF NOT EXISTS "QueueJob_list_idx" ON "QueueJob" ("createdAt" DESC, "id" DESC);
CREATE INDEX IF NOT EXISTS "QueueJob_status_list_idx" ON "QueueJob" ("status", "createdAt" DESC, "id" DESC);
-- One row per paused job type; the type '' pauses every type.
CREATE TABLE IF NOT EXISTS "QueueJobPause" (
    "type" TEXT NOT NULL,
    "pausedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT now(),
    CONSTRAINT "QueueJobPause_pkey" PRIMARY KEY ("type")
);
