-- Scheduler tables as Prisma creates the spec's models on SQLite (DateTime columns hold
-- epoch milliseconds, as Prisma stores them). Only what is missing is created.
CREATE TABLE IF NOT EXISTS "ScheduledJob" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "type" TEXT NOT NULL,
    "payload" TEXT NOT NULL,
    "options" TEXT NOT NULL,
    "scheduledFor" DATETIME NOT NULL,
    "status" TEXT NOT NULL,
    "error" TEXT,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL
);

CREATE TABLE IF NOT EXISTS "RecurringJob" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "payload" TEXT NOT NULL,
    "options" TEXT NOT NULL,
    "schedule" TEXT NOT NULL,
    "timezone" TEXT NOT NULL,
    "enabled" BOOLEAN NOT NULL,
    "nextRunAt" DATETIME,
    "lastRunAt" DATETIME,
    "lastError" TEXT,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL
);

CREATE UNIQUE INDEX IF NOT EXISTS "RecurringJob_name_key" ON "RecurringJob"("name");
CREATE INDEX IF NOT EXISTS "ScheduledJob_status_scheduledFor_idx" ON "ScheduledJob"("status", "scheduledFor");
CREATE INDEX IF NOT EXISTS "ScheduledJob_type_idx" ON "ScheduledJob"("type");
CREATE INDEX IF NOT EXISTS "RecurringJob_enabled_nextRunAt_idx" ON "RecurringJob"("enabled", "nextRunAt");
