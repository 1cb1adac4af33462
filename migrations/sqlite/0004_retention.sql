-- Retention covers cancelled jobs too: the finished-jobs index takes them in.
CREATE INDEX "QueueJob_done_idx" ON "QueueJob" ("status", "completedAt")
    WHERE "status" IN ('completed', 'dead', 'cancelled');
DROP INDEX IF EXISTS "QueueJob_finished_idx";
