-- Scheduler tables, exactly as Prisma creates the spec's ScheduledJob and RecurringJob
-- models on PostgreSQL; only what is missing is created, so a Prisma-made database is
-- left untouched. The advisory lock keeps concurrent migrations from racing.
SELECT pg_advisory_xact_lock(7283641093);

CREATE TABLE IF NOT EXISTS "ScheduledJob" (
    "id" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "payload" TEXT NOT NULL,
    "options" TEXT NOT NULL,
    "scheduledFor" TIMESTAMP(3) NOT NULL,
    "status" TEXT NOT NULL,
    "error" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "ScheduledJob_pkey" PRIMARY KEY ("id")
);

CREATE TABLE IF NOT EXISTS "RecurringJob" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "payload" TEXT NOT NULL,
    "options" TEXT NOT NULL,
    "schedule" TEXT NOT NULL,
    "timezone" TEXT NOT NULL,
    "enabled" BOOLEAN NOT NULL,
    "nextRunAt" TIMESTAMP(3),
    "lastRunAt" TIMESTAMP(3),
    "lastError" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "RecurringJob_pkey" PRIMARY KEY ("id")
);

CREATE UNIQUE INDEX IF NOT EXISTS "RecurringJob_name_key" ON "RecurringJob"("name");
CREATE INDEX IF NOT EXISTS "ScheduledJob_status_scheduledFor_idx" ON "ScheduledJob"("status", "scheduledFor");
CREATE INDEX IF NOT EXISTS "ScheduledJob_type_idx" ON "ScheduledJob"("type");
CREATE INDEX IF NOT EXISTS "RecurringJob_enabled_nextRunAt_idx" ON "RecurringJob"("enabled", "nextRunAt");
