//! `NativeScheduler`: the core scheduler as a JavaScript class. Rows cross as typed objects
//! (`ScheduledJobObject`, `RecurringJobObject`) with `Date`s and `null`s, as Prisma gave them
//! to the old scheduler.

use crate::bridge::{config_value, guarded, invalid_arg, napi_err, throw_config, warn_all};
use crate::enqueue::{date_at, enqueue_options, job_type};
use crate::provider::{date, NativeProvider};
use chaaskit_queue_core::config::{ConfigValue, SchedulerConfig};
use chaaskit_queue_core::job::{now_ms, raw_json};
use chaaskit_queue_core::schedule::{self, Schedule};
use chaaskit_queue_core::scheduler::{RecurringInput, Scheduler};
use chaaskit_queue_core::store::{RecurringJob, ScheduledJob};
use chrono::{DateTime, Utc};
use napi::bindgen_prelude::*;
use napi_derive::napi;

/// `registerRecurring`'s input (the payload as JSON text); `type` and `options` are checked here.
#[napi(object, object_to_js = false)]
pub struct RecurringArgs<'a> {
    pub name: String,
    #[napi(js_name = "type", ts_type = "string")]
    pub job_type: Option<Unknown<'a>>,
    pub payload_json: String,
    pub schedule: String,
    pub timezone: Option<String>,
    #[napi(ts_type = "EnqueueArgs")]
    pub options: Option<Unknown<'a>>,
}

/// A `ScheduledJob` row.
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct ScheduledJobObject {
    pub id: String,
    #[napi(js_name = "type")]
    pub job_type: String,
    /// JSON text.
    pub payload: String,
    /// JSON text.
    pub options: String,
    pub scheduled_for: DateTime<Utc>,
    #[napi(ts_type = "'scheduled' | 'enqueued' | 'cancelled'")]
    pub status: String,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<ScheduledJob> for ScheduledJobObject {
    fn from(r: ScheduledJob) -> Self {
        ScheduledJobObject {
            id: r.id,
            job_type: r.job_type,
            payload: r.payload,
            options: r.options,
            scheduled_for: date(r.scheduled_for),
            status: r.status,
            error: r.error,
            created_at: date(r.created_at),
            updated_at: date(r.updated_at),
        }
    }
}

/// A `RecurringJob` row.
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct RecurringJobObject {
    pub id: String,
    pub name: String,
    #[napi(js_name = "type")]
    pub job_type: String,
    /// JSON text.
    pub payload: String,
    /// JSON text.
    pub options: String,
    pub schedule: String,
    pub timezone: String,
    pub enabled: bool,
    pub next_run_at: Option<DateTime<Utc>>,
    pub last_run_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<RecurringJob> for RecurringJobObject {
    fn from(r: RecurringJob) -> Self {
        RecurringJobObject {
            id: r.id,
            name: r.name,
            job_type: r.job_type,
            payload: r.payload,
            options: r.options,
            schedule: r.schedule,
            timezone: r.timezone,
            enabled: r.enabled,
            next_run_at: r.next_run_at.map(date),
            last_run_at: r.last_run_at.map(date),
            last_error: r.last_error,
            created_at: date(r.created_at),
            updated_at: date(r.updated_at),
        }
    }
}

/// What one poll enqueued (`PollOutcome`).
#[napi(object)]
pub struct PollOutcome {
    pub scheduled: f64,
    pub recurring: f64,
    /// Rows whose enqueue failed (kept for the next poll).
    pub failed: f64,
}

#[napi]
pub struct NativeScheduler {
    core: Scheduler,
}

#[napi]
impl NativeScheduler {
    /// `config`: the `scheduler` config block, checked here (errors name `scheduler.<field>`).
    /// No database connection is made yet.
    #[napi(constructor, catch_unwind)]
    pub fn new(env: Env, provider: &NativeProvider, config: Option<Unknown>) -> Result<Self> {
        let value = match config {
            Some(c) => config_value(&c, 0)?,
            None => ConfigValue::Undefined,
        };
        let checked =
            SchedulerConfig::from_value(&value, "scheduler").map_err(|e| throw_config(&env, e))?;
        warn_all(&checked.warnings);
        let config = checked.config;
        let shared = provider.shared();
        // The database pool is made inside the runtime it will run on.
        let core =
            within_runtime_if_available(|| Scheduler::open(shared, config)).map_err(napi_err)?;
        Ok(NativeScheduler { core })
    }

    /// The scheduler config, every default filled in.
    #[napi(
        getter,
        ts_return_type = "{ enabled: boolean; pollInterval: number; databaseUrl?: string; autoMigrate: boolean }"
    )]
    pub fn config(&self) -> Result<serde_json::Value> {
        serde_json::to_value(self.core.config()).map_err(|e| Error::from_reason(e.to_string()))
    }

    /// `"postgres"` or `"sqlite"`.
    #[napi(getter)]
    pub fn backend(&self) -> &'static str {
        self.core.store().backend()
    }

    #[napi(getter)]
    pub fn running(&self) -> bool {
        self.core.is_running()
    }

    #[napi]
    pub async fn migrate(&self) -> Result<()> {
        guarded("Scheduler.migrate", async {
            self.core.migrate().await.map_err(napi_err)
        })
        .await
    }

    #[napi]
    pub async fn start(&self) -> Result<()> {
        guarded("Scheduler.start", async {
            self.core.start().await.map_err(napi_err)
        })
        .await
    }

    #[napi]
    pub async fn stop(&self) -> Result<()> {
        guarded("Scheduler.stop", async {
            self.core.stop().await;
            Ok(())
        })
        .await
    }

    /// One poll now: what it enqueued.
    #[napi]
    pub async fn poll_once(&self) -> Result<PollOutcome> {
        let o = guarded("Scheduler.pollOnce", async {
            self.core.poll_once().await.map_err(napi_err)
        })
        .await?;
        Ok(PollOutcome {
            scheduled: o.scheduled as f64,
            recurring: o.recurring as f64,
            failed: o.failed as f64,
        })
    }

    /// `type`, `date` (a `Date`, epoch ms or date string) and `options` (of which `delay` and
    /// `scheduledFor` do not apply) are checked here, before the promise.
    #[napi(
        catch_unwind,
        ts_args_type = "type: string, payloadJson: string, date: Date | number | string, options?: EnqueueArgs | undefined | null",
        ts_return_type = "Promise<ScheduledJobObject>"
    )]
    pub fn schedule<'env>(
        &self,
        env: &'env Env,
        job_type_value: Unknown,
        payload_json: String,
        at: Option<Unknown>,
        options: Option<Unknown>,
    ) -> Result<PromiseRaw<'env, ScheduledJobObject>> {
        let job_type = job_type(env, Some(job_type_value), "type")?;
        let at = date_at(env, at, "date")?;
        let options = enqueue_options(env, options, "options")?;
        let payload = raw_json(&payload_json)
            .map_err(|e| invalid_arg(format!("payload is not JSON: {e}")))?;
        let core = self.core.clone();
        env.spawn_future(guarded("Scheduler.schedule", async move {
            let row = core
                .schedule(&job_type, &payload, at, &options)
                .await
                .map_err(napi_err)?;
            Ok(row.into())
        }))
    }

    #[napi]
    pub async fn get_scheduled_job(&self, id: String) -> Result<Option<ScheduledJobObject>> {
        guarded("Scheduler.getScheduledJob", async {
            let row = self.core.get_scheduled_job(&id).await.map_err(napi_err)?;
            Ok(row.map(Into::into))
        })
        .await
    }

    #[napi]
    pub async fn cancel_scheduled_job(&self, id: String) -> Result<bool> {
        guarded("Scheduler.cancelScheduledJob", async {
            self.core.cancel_scheduled_job(&id).await.map_err(napi_err)
        })
        .await
    }

    /// `registerRecurring`'s input (`index.js` checks the name, schedule and time zone kinds).
    #[napi(catch_unwind, ts_return_type = "Promise<RecurringJobObject>")]
    pub fn register_recurring<'env>(
        &self,
        env: &'env Env,
        input: RecurringArgs,
    ) -> Result<PromiseRaw<'env, RecurringJobObject>> {
        let payload = raw_json(&input.payload_json)
            .map_err(|e| invalid_arg(format!("input.payload is not JSON: {e}")))?;
        let input = RecurringInput {
            name: input.name,
            job_type: job_type(env, input.job_type, "input.type")?,
            payload,
            schedule: input.schedule,
            timezone: input.timezone,
            options: enqueue_options(env, input.options, "input.options")?,
        };
        let core = self.core.clone();
        env.spawn_future(guarded("Scheduler.registerRecurring", async move {
            Ok(core
                .register_recurring(input)
                .await
                .map_err(napi_err)?
                .into())
        }))
    }

    #[napi]
    pub async fn enable_recurring(&self, name: String) -> Result<bool> {
        guarded("Scheduler.enableRecurring", async {
            self.core.enable_recurring(&name).await.map_err(napi_err)
        })
        .await
    }

    #[napi]
    pub async fn disable_recurring(&self, name: String) -> Result<bool> {
        guarded("Scheduler.disableRecurring", async {
            self.core.disable_recurring(&name).await.map_err(napi_err)
        })
        .await
    }

    #[napi]
    pub async fn delete_recurring(&self, name: String) -> Result<bool> {
        guarded("Scheduler.deleteRecurring", async {
            self.core.delete_recurring(&name).await.map_err(napi_err)
        })
        .await
    }

    #[napi]
    pub async fn list_recurring(&self) -> Result<Vec<RecurringJobObject>> {
        guarded("Scheduler.listRecurring", async {
            let rows = self.core.list_recurring().await.map_err(napi_err)?;
            Ok(rows.into_iter().map(Into::into).collect())
        })
        .await
    }
}

/// `nextRuns(schedule, { timezone, from, count })`: the next `count` runs (default 1) of
/// `schedule` in `timezone` (default UTC) strictly after `from_ms` (default now), as epoch
/// ms. `index.js` checks the argument kinds; `from` (a `Date`, epoch ms or date string) and
/// the values are checked here.
#[napi(
    catch_unwind,
    ts_args_type = "schedule: string, timezone?: string | undefined | null, from?: Date | number | string | undefined | null, count?: number | undefined | null"
)]
pub fn next_runs(
    env: Env,
    schedule: String,
    timezone: Option<String>,
    from: Option<Unknown>,
    count: Option<f64>,
) -> Result<Vec<f64>> {
    let tz = timezone.as_deref().unwrap_or(schedule::DEFAULT_TIME_ZONE);
    let s = Schedule::parse(&schedule, tz).map_err(napi_err)?;
    let from = match from {
        Some(v) => date_at(&env, Some(v), "options.from")?,
        None => now_ms(),
    };
    let count = match count {
        None => 1,
        Some(n) if n.fract() == 0.0 && (1.0..=schedule::MAX_RUNS as f64).contains(&n) => n as usize,
        Some(n) => {
            return Err(invalid_arg(format!(
                "options.count must be a whole number from 1 to {}, got {n}",
                schedule::MAX_RUNS
            )))
        }
    };
    Ok(s.runs_after(from, count)
        .into_iter()
        .map(|ms| ms as f64)
        .collect())
}
