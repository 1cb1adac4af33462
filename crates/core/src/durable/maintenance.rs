//! Maintenance: the heartbeat that renews held leases, reaping the leases of workers that
//! died, and retention (purging finished jobs, then VACUUM when the server will not).

use super::{lock, Inner, Lease};
use crate::error::Result;
use crate::events::{EventKind, EventRecord, Signal};
use crate::job::JobStatus;
use std::sync::Weak;
use std::time::Duration;
use tokio::time::Instant;
use uuid::Uuid;

/// Rows one retention statement deletes at most.
const PURGE_BATCH: i64 = 1000;
/// How often expired leases are looked for.
const REAP_EVERY: Duration = Duration::from_millis(500);
/// How often finished jobs past their retention are purged.
const PURGE_EVERY: Duration = Duration::from_secs(60);

impl Inner {
    pub(super) async fn reap(&self) -> Result<u64> {
        let jobs = self.backend.table().reap().await?;
        let n = jobs.len() as u64;
        if n > 0 {
            tracing::warn!(
                jobs = n,
                "{n} job(s) whose worker stopped renewing its lease are visible again (or dead when out of retries)"
            );
            self.shared.wake();
            self.publish(
                jobs.iter()
                    .map(|j| EventRecord::new(EventKind::Stalled, j.id.clone()))
                    .collect(),
            );
            for j in jobs {
                self.shared.signals.send(Signal::Stalled(Box::new(j)));
            }
            self.backend.notify_others().await?;
        }
        Ok(n)
    }

    pub(super) async fn purge(&self) -> Result<u64> {
        let mut total = 0;
        for (status, keep) in [
            (JobStatus::Completed, self.retention.completed),
            (JobStatus::Dead, self.retention.dead),
            (JobStatus::Cancelled, self.retention.cancelled),
        ] {
            loop {
                let n = self
                    .backend
                    .table()
                    .purge(status, keep, PURGE_BATCH)
                    .await?;
                total += n;
                if n < PURGE_BATCH as u64 || self.shared.is_closed() {
                    break;
                }
                tokio::task::yield_now().await;
            }
        }
        Ok(total)
    }

    /// [`Inner::purge`], then, when it deleted rows, [`Jobs::vacuum_if_unattended`].
    pub(super) async fn purge_and_tidy(&self) -> Result<u64> {
        let n = self.purge().await?;
        if n > 0 {
            self.backend.vacuum_if_unattended().await?;
        }
        Ok(n)
    }

    /// Renew the held leases. One that no longer matches was settled meanwhile, reclaimed, or
    /// cancelled: a cancel whose notification was lost is told to the workers from here.
    pub(super) async fn heartbeat(&self) -> Result<()> {
        let leases: Vec<Lease> = lock(&self.held)
            .iter()
            .map(|(&id, h)| Lease {
                id,
                delivery: h.delivery,
            })
            .collect();
        if leases.is_empty() {
            return Ok(());
        }
        let kept: std::collections::HashSet<Lease> = self
            .backend
            .table()
            .extend(&leases, self.lease_ms)
            .await?
            .into_iter()
            .collect();
        let lost: Vec<Uuid> = {
            let held = lock(&self.held);
            leases
                .iter()
                .filter(|l| !kept.contains(l))
                // Still held: not settled here in between.
                .filter(|l| held.get(&l.id).map(|h| h.delivery) == Some(l.delivery))
                .map(|l| l.id)
                .collect()
        };
        if lost.is_empty() {
            return Ok(());
        }
        for job in self.backend.table().by_ids(&lost).await? {
            if job.status == JobStatus::Cancelled {
                self.shared.signals.send(Signal::Cancelled(job.id));
            }
        }
        Ok(())
    }
}

/// Heartbeat (a third of the lease), lease reaping and retention, until the provider goes.
pub(super) async fn maintenance(inner: Weak<Inner>) {
    let Some(beat) = inner
        .upgrade()
        .map(|i| Duration::from_millis((i.lease_ms / 3).clamp(100, 10_000)))
    else {
        return;
    };
    let tick = beat.min(REAP_EVERY);
    let mut last_beat = Instant::now();
    let mut last_reap = Instant::now() - REAP_EVERY;
    let mut last_purge = Instant::now() - PURGE_EVERY;
    let mut purging: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        {
            let Some(i) = inner.upgrade() else { return };
            if i.shared.is_closed() {
                return;
            }
            let now = Instant::now();
            if now - last_beat >= beat {
                last_beat = now;
                if let Err(e) = i.heartbeat().await.or_else(|e| i.ignore_if_closed(e)) {
                    tracing::warn!("queue heartbeat failed; retrying at the next tick: {e}");
                }
            }
            if now - last_reap >= REAP_EVERY {
                last_reap = now;
                if let Err(e) = i.reap().await.map(drop).or_else(|e| i.ignore_if_closed(e)) {
                    tracing::warn!("reclaiming expired leases failed: {e}");
                }
            }
            // In a task of its own, so that a long purge never holds up a heartbeat.
            if now - last_purge >= PURGE_EVERY && purging.as_ref().is_none_or(|t| t.is_finished()) {
                last_purge = now;
                let i = i.clone();
                purging = Some(tokio::spawn(async move {
                    let r = i.purge_and_tidy().await.map(drop);
                    if let Err(e) = r.or_else(|e| i.ignore_if_closed(e)) {
                        tracing::warn!("purging finished jobs failed: {e}");
                    }
                }));
            }
        }
        tokio::time::sleep(tick).await;
    }
}
