-- chaaskit: no transaction
-- A heartbeat changes only "lockedUntil": with no index on it, PostgreSQL can make that update
-- HOT (no index entries, the row's page only). Reaping finds the few processing jobs through
-- "QueueJob_status_created_idx" instead. (SQLite keeps its lease index: it has no status index.)
DROP INDEX CONCURRENTLY IF EXISTS "QueueJob_lease_idx";
