-- Nothing on SQLite: it keeps "QueueJob_lease_idx" (it has no index by status to reap through).
SELECT 1;
