-- The jobs table of the `sqlite` queue provider. Idempotent: only what is missing is
-- created (the provider runs it inside BEGIN IMMEDIATE, so concurrent starts serialise).
-- Times are epoch milliseconds of SQLite's clock; receipts are "<id>:<deliveries>".
CREATE TABLE IF NOT EXISTS "QueueJob" (
    -- Arrival order: first in, first out within a priority.
    "seq" INTEGER PRIMARY KEY AUTOINCREMENT,
    "id" TEXT NOT NULL UNIQUE,
    "type" TEXT NOT NULL,
    "payload" TEXT NOT NULL,
    "options" TEXT NOT NULL,
    -- pending | scheduled | processing | completed | failed | dead
    "status" TEXT NOT NULL,
    "priority" INTEGER NOT NULL DEFAULT 0,
    "maxRetries" INTEGER NOT NULL,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    -- Times handed out: the lease token in a receipt, so a stale receipt settles nothing.
    "deliveries" INTEGER NOT NULL DEFAULT 0,
    -- When a pending/scheduled/failed job may be claimed.
    "runAt" INTEGER NOT NULL,
    "scheduledFor" INTEGER,
    -- End of the lease of a processing job; a worker's heartbeat moves it on.
    "lockedUntil" INTEGER,
    "deduplicationKey" TEXT,
    "progress" REAL,
    "result" TEXT,
    "lastError" TEXT,
    "createdAt" INTEGER NOT NULL,
    "startedAt" INTEGER,
    "completedAt" INTEGER
);

CREATE INDEX IF NOT EXISTS "QueueJob_claim_idx" ON "QueueJob" ("priority", "runAt", "seq")
    WHERE "status" IN ('pending', 'scheduled', 'failed');
CREATE INDEX IF NOT EXISTS "QueueJob_delayed_idx" ON "QueueJob" ("runAt")
    WHERE "status" IN ('scheduled', 'failed');
CREATE INDEX IF NOT EXISTS "QueueJob_lease_idx" ON "QueueJob" ("lockedUntil")
    WHERE "status" = 'processing';
CREATE INDEX IF NOT EXISTS "QueueJob_finished_idx" ON "QueueJob" ("status", "completedAt")
    WHERE "status" IN ('completed', 'dead');
CREATE UNIQUE INDEX IF NOT EXISTS "QueueJob_deduplicationKey_key" ON "QueueJob" ("deduplicationKey")
    WHERE "deduplicationKey" IS NOT NULL AND "status" NOT IN ('completed', 'dead');
