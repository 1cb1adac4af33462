//! Claim and receive: leases taken in a task of their own, the attempts this provider holds,
//! and the wait of an idle receive (wake-ups, the quiet state, the fallback poll).

use super::{lock, DbQueue, Held, Lease, Quiet, WORK_CONNECTIONS};
use crate::error::{QueueError, Result};
use crate::events::{EventKind, EventRecord};
use crate::job::{has_retries_left, Job, ReceivedJob};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;
use uuid::Uuid;

impl DbQueue {
    /// Claim in a task of its own: a receive dropped mid-claim (a worker stopping) gives the
    /// claimed jobs straight back instead of stranding them until their leases end.
    pub(super) async fn claim(&self, max: usize) -> Result<Vec<(Job, i64)>> {
        let (tx, rx) = oneshot::channel();
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let r = inner.backend.table().claim(max, inner.lease_ms).await;
            if let Err(Ok(jobs)) = tx.send(r) {
                for (job, delivery) in jobs {
                    if let Ok(id) = Uuid::try_parse(&job.id) {
                        let _ = inner.backend.table().release(Lease { id, delivery }).await;
                    }
                }
                inner.shared.wake();
            }
        });
        rx.await.map_err(|_| QueueError::Closed)?
    }

    /// Claim up to `max` jobs and hold them: the jobs a receive returns.
    pub(super) async fn claim_received(&self, max: usize) -> Result<Vec<ReceivedJob>> {
        let claimed = match self.claim(max).await {
            // Closed while claiming: the pool is gone, and so are the jobs it held.
            Err(_) if self.inner.shared.is_closed() => return Ok(Vec::new()),
            r => r?,
        };
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        let since = Instant::now();
        let publishing = self.inner.publish_tx.is_some();
        let mut active = Vec::new();
        let mut held = lock(&self.inner.held);
        let out = claimed
            .into_iter()
            .map(|(job, delivery)| {
                if let Ok(id) = Uuid::try_parse(&job.id) {
                    let h = Held {
                        delivery,
                        since,
                        attempt: job.attempts,
                        last: !has_retries_left(job.attempts, &job.options),
                    };
                    held.insert(id, h);
                }
                if publishing {
                    active.push(EventRecord::new(EventKind::Active, job.id.clone()));
                }
                let receipt_handle = format!("{}:{delivery}", job.id);
                ReceivedJob {
                    job,
                    receipt_handle,
                }
            })
            .collect();
        drop(held);
        self.inner.publish(active);
        Ok(out)
    }

    /// Up to `max` jobs, waiting at most `wait` for one (the provider's `receive`).
    pub(super) async fn receive_jobs(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<ReceivedJob>> {
        let deadline = Instant::now() + wait;
        let b = &self.inner.backend;
        if !self.inner.receiving.swap(true, Ordering::AcqRel) {
            // Only a process that receives listens: in one that only enqueues, every job's
            // NOTIFY woke a database backend and this process for nothing. (The listener
            // wakes the receivers once it listens, for what was queued before.)
            b.listen(Arc::downgrade(&self.inner.shared));
            // A worker's first jobs claim, settle, renew and publish at once: without this their
            // handlers waited for those connections to be made (the first 50 jobs at 500 jobs/s
            // started 20–100 ms late, the whole p99 of the latency benchmark).
            b.table().work.warm(WORK_CONNECTIONS).await;
        }
        loop {
            let woken = self.inner.shared.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if max == 0 || self.inner.shared.is_closed() {
                return Ok(Vec::new());
            }
            // Nothing has changed here since a claim came back short: on PostgreSQL, where every
            // change that makes a job claimable wakes (here or by NOTIFY), no claim until then,
            // which at 500 jobs/s was every other one a worker made. Other processes on an
            // SQLite file cannot wake this one: there a look is a claim, and an idle one (the
            // fallback poll) skips the due-time lookup, which only a wake here can change
            // sooner than the next poll.
            let wakes = self.inner.shared.wakes.load(Ordering::Acquire);
            let quiet = (*lock(&self.inner.quiet)).filter(|q| q.wakes == wakes);
            let hears = b.hears_other_processes();
            let now = Instant::now();
            let known = match quiet {
                Some(Quiet { until: Some(u), .. }) if now < u => Some(u),
                Some(Quiet { until: None, .. }) if hears => None,
                _ => {
                    let claimed = self.claim_received(max).await?;
                    if !claimed.is_empty() {
                        if claimed.len() < max {
                            *lock(&self.inner.quiet) = Some(Quiet { wakes, until: None });
                        }
                        return Ok(claimed);
                    }
                    if self.inner.shared.is_closed() {
                        return Ok(Vec::new());
                    }
                    match quiet {
                        Some(Quiet { until: Some(_), .. }) if !hears => {
                            let until = Instant::now() + b.fallback_poll();
                            *lock(&self.inner.quiet) = Some(Quiet {
                                wakes,
                                until: Some(until),
                            });
                            Some(until)
                        }
                        _ => None,
                    }
                }
            };
            let now = Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let until = match known {
                Some(u) => u,
                None => {
                    let mut until = now + b.fallback_poll();
                    let next = match b.table().next_due_ms().await {
                        Err(_) if self.inner.shared.is_closed() => return Ok(Vec::new()),
                        r => r?,
                    };
                    if let Some(ms) = next {
                        // Due rows another claimer holds are skipped: look again soon, not at once.
                        until = until.min(now + Duration::from_millis(ms.max(10) as u64));
                    }
                    *lock(&self.inner.quiet) = Some(Quiet {
                        wakes,
                        until: Some(until),
                    });
                    until
                }
            };
            tokio::select! {
                _ = &mut woken => {}
                _ = tokio::time::sleep_until(until.min(deadline)) => {}
            }
        }
    }
}
