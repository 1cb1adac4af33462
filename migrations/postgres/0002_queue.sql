-- The jobs table of the `postgres` queue provider. Idempotent: only what is missing is
-- created. The advisory lock (the scheduler migration's key) keeps concurrent starts from
-- racing; the provider runs this inside one transaction with its schema first on the
-- search_path. Times are the database's clock (now()); receipts are "<id>:<deliveries>".
SELECT pg_advisory_xact_lock(7283641093);

CREATE TABLE IF NOT EXISTS "QueueJob" (
    "id" UUID NOT NULL,
    -- Arrival order: first in, first out within a priority.
    "seq" BIGINT GENERATED ALWAYS AS IDENTITY,
    "type" TEXT NOT NULL,
    "payload" JSON NOT NULL,
    "options" JSON NOT NULL,
    -- pending | scheduled | processing | completed | failed | dead
    "status" TEXT NOT NULL,
    "priority" BIGINT NOT NULL DEFAULT 0,
    "maxRetries" BIGINT NOT NULL,
    "attempts" BIGINT NOT NULL DEFAULT 0,
    -- Times handed out: the lease token in a receipt, so a stale receipt settles nothing.
    "deliveries" BIGINT NOT NULL DEFAULT 0,
    -- When a pending/scheduled/failed job may be claimed.
    "runAt" TIMESTAMPTZ(3) NOT NULL DEFAULT now(),
    "scheduledFor" TIMESTAMPTZ(3),
    -- End of the lease of a processing job; a worker's heartbeat moves it on.
    "lockedUntil" TIMESTAMPTZ(3),
    "deduplicationKey" TEXT,
    "progress" DOUBLE PRECISION,
    "result" JSON,
    "lastError" TEXT,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT now(),
    "startedAt" TIMESTAMPTZ(3),
    "completedAt" TIMESTAMPTZ(3),

    CONSTRAINT "QueueJob_pkey" PRIMARY KEY ("id")
);

-- The claim walks this index in order: lower priority first, then due time, then arrival.
CREATE INDEX IF NOT EXISTS "QueueJob_claim_idx" ON "QueueJob" ("priority", "runAt", "seq")
    WHERE "status" IN ('pending', 'scheduled', 'failed');
-- Delayed and backing-off jobs, for the next wake-up.
CREATE INDEX IF NOT EXISTS "QueueJob_delayed_idx" ON "QueueJob" ("runAt")
    WHERE "status" IN ('scheduled', 'failed');
-- Leases, for reclaiming the jobs of a worker that died.
CREATE INDEX IF NOT EXISTS "QueueJob_lease_idx" ON "QueueJob" ("lockedUntil")
    WHERE "status" = 'processing';
-- Finished jobs, for retention.
CREATE INDEX IF NOT EXISTS "QueueJob_finished_idx" ON "QueueJob" ("status", "completedAt")
    WHERE "status" IN ('completed', 'dead');
-- One unfinished job per deduplication key.
CREATE UNIQUE INDEX IF NOT EXISTS "QueueJob_deduplicationKey_key" ON "QueueJob" ("deduplicationKey")
    WHERE "deduplicationKey" IS NOT NULL AND "status" NOT IN ('completed', 'dead');

-- Wake idle workers when a transaction that queued jobs commits (also one that an app made
-- itself): one notification per statement, carrying the table's schema.
CREATE OR REPLACE FUNCTION "QueueJob_notify"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('chaaskit_queue', TG_TABLE_SCHEMA);
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER "QueueJob_notify_insert" AFTER INSERT ON "QueueJob"
    FOR EACH STATEMENT EXECUTE FUNCTION "QueueJob_notify"();
