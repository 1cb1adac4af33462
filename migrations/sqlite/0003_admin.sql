-- The admin API's part of the `sqlite` queue provider: newest-first listing walks an index
-- (backwards; ascending keys are appended at its right edge), and pauses live in a table so
-- every process on the file honours them.
-- Idempotent; run after 0002_queue.sql inside the same BEGIN IMMEDIATE.
CREATE INDEX IF NOT EXISTS "QueueJob_created_idx" ON "QueueJob" ("createdAt", "id");
-- By type: a job's type and creation never change, so claims and settlements never touch it.
CREATE INDEX IF NOT EXISTS "QueueJob_type_created_idx" ON "QueueJob" ("type", "createdAt", "id");
-- No ("status", …) listing index here (PostgreSQL has one): the status changes on every claim
-- and settlement, and SQLite would pay to move the row in it each time. A listing by status
-- walks the index above. Earlier builds made descending listing indexes; they go.
DROP INDEX IF EXISTS "QueueJob_list_idx";
DROP INDEX IF EXISTS "QueueJob_status_list_idx";
-- One row per paused job type; the type '' pauses every type.
CREATE TABLE IF NOT EXISTS "QueueJobPause" (
    "type" TEXT NOT NULL PRIMARY KEY,
    "pausedAt" INTEGER NOT NULL
);
