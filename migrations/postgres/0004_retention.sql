-- chaaskit: no transaction
-- Retention covers cancelled jobs too: the finished-jobs index takes them in. Built
-- CONCURRENTLY (writes go on meanwhile), so each statement runs on its own, and each may run
-- again: a run cut short (which may leave an invalid index) starts over from the first.
DROP INDEX CONCURRENTLY IF EXISTS "QueueJob_done_idx";
CREATE INDEX CONCURRENTLY "QueueJob_done_idx" ON "QueueJob" ("status", "completedAt")
    WHERE "status" IN ('completed', 'dead', 'cancelled');
DROP INDEX CONCURRENTLY IF EXISTS "QueueJob_finished_idx";
