-- The admin API's part of the `sqlite` queue provider: newest-first listing walks an
-- index, and pauses live in a table so every process on the file honours them.
-- Idempotent; run after 0002_queue.sql inside the same BEGIN IMMEDIATE.
CREATE INDEX IF NOT EXISTS "QueueJob_list_idx" ON "QueueJob" ("createdAt" DESC, "id" DESC);
-- No ("status", …) listing index here (PostgreSQL has one): SQLite's listing, whose status
-- filter is optional, cannot walk it, and every claim and settlement would pay to keep it.
-- Earlier builds made it; it goes.
DROP INDEX IF EXISTS "QueueJob_status_list_idx";
-- One row per paused job type; the type '' pauses every type.
CREATE TABLE IF NOT EXISTS "QueueJobPause" (
    "type" TEXT NOT NULL PRIMARY KEY,
    "pausedAt" INTEGER NOT NULL
);
