//! What one SQS provider knows of recent jobs (enqueued or received here), for `getJob`: an
//! `lru` map bounded by count and by bytes, the least recently touched job evicted first.

use crate::job::Job;
use lru::LruCache;

/// Jobs kept for `getJob`.
pub const MAX_JOBS: usize = 10_000;
/// Payload, result and error bytes kept for `getJob`.
pub const MAX_BYTES: usize = 32 << 20;
/// Bytes counted for a job beside its payload, result and error.
const OVERHEAD: usize = 256;

pub struct JobCache {
    max_jobs: usize,
    max_bytes: usize,
    /// The summed [`weight`] of the jobs held.
    bytes: usize,
    jobs: LruCache<String, Job>,
}

fn weight(job: &Job) -> usize {
    OVERHEAD
        + job.payload.get().len()
        + job.result.as_ref().map_or(0, |r| r.get().len())
        + job.last_error.as_ref().map_or(0, String::len)
}

impl JobCache {
    pub fn new(max_jobs: usize, max_bytes: usize) -> Self {
        JobCache {
            max_jobs,
            max_bytes,
            bytes: 0,
            // Unbounded for the crate: the count and the bytes are both checked in `evict`.
            jobs: LruCache::unbounded(),
        }
    }

    /// Add or replace a job (it becomes the most recently touched).
    pub fn put(&mut self, job: Job) {
        self.bytes += weight(&job);
        if let Some(old) = self.jobs.put(job.id.clone(), job) {
            self.bytes -= weight(&old);
        }
        self.evict();
    }

    /// Change a known job in place (it becomes the most recently touched); `false` when it
    /// is not known.
    pub fn update(&mut self, id: &str, f: impl FnOnce(&mut Job)) -> bool {
        let Some(job) = self.jobs.get_mut(id) else {
            return false;
        };
        let before = weight(job);
        f(job);
        self.bytes = self.bytes + weight(job) - before;
        self.evict();
        true
    }

    /// A known job; looking does not count as a touch.
    pub fn get(&self, id: &str) -> Option<&Job> {
        self.jobs.peek(id)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Drop least recently touched jobs until both bounds hold (the newest job stays, however
    /// big).
    fn evict(&mut self) {
        while self.jobs.len() > self.max_jobs
            || (self.bytes > self.max_bytes && self.jobs.len() > 1)
        {
            let Some((_, old)) = self.jobs.pop_lru() else {
                break;
            };
            self.bytes -= weight(&old);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{JobOptions, JobStatus};
    use serde_json::value::RawValue;

    fn job(id: &str, payload_len: usize) -> Job {
        Job {
            id: id.into(),
            job_type: "t".into(),
            payload: RawValue::from_string(format!("\"{}\"", "x".repeat(payload_len))).unwrap(),
            options: JobOptions::default(),
            status: JobStatus::Pending,
            attempts: 0,
            created_at: 0,
            scheduled_for: None,
            started_at: None,
            completed_at: None,
            last_error: None,
            progress: None,
            result: None,
        }
    }

    #[test]
    fn bounded_by_count_least_recently_touched_first() {
        let mut c = JobCache::new(3, usize::MAX);
        for i in 0..5 {
            c.put(job(&i.to_string(), 1));
        }
        assert_eq!(c.len(), 3);
        assert!(c.get("0").is_none() && c.get("1").is_none());
        assert!(c.update("4", |j| j.status = JobStatus::Completed));
        assert_eq!(c.get("4").unwrap().status, JobStatus::Completed);
        assert!(!c.update("0", |_| {}));
        // Replacing a job keeps one entry.
        c.put(job("3", 1));
        assert_eq!(c.len(), 3);
        // Touched last: "4" (updated), then "3" (replaced). "2" is the oldest until updated;
        // then "4" is, and goes first.
        assert!(c.update("2", |j| j.attempts = 1));
        c.put(job("5", 1));
        assert!(
            c.get("4").is_none(),
            "the least recently touched job was evicted"
        );
        assert!(c.get("2").is_some() && c.get("3").is_some() && c.get("5").is_some());
    }

    #[test]
    fn bounded_by_bytes() {
        let mut c = JobCache::new(100, 3 * (OVERHEAD + 1000));
        for i in 0..10 {
            c.put(job(&i.to_string(), 998));
        }
        assert_eq!(c.len(), 3);
        assert!(c.get("9").is_some());
        // Growing a job (a big error) evicts older ones.
        c.update("9", |j| j.last_error = Some("e".repeat(2000)));
        assert!(c.get("9").is_some());
        assert!(c.len() < 3);
    }
}
