//! `NativeScheduler`: the core scheduler as a JavaScript class. Rows cross as JSON text
//! (dates as epoch ms), which `index.js` turns into objects with `Date`s.

use crate::bridge::{config_value, guarded, napi_err, throw_config, to_json, warn_all};
use crate::provider::{enqueue_options, EnqueueArgs, NativeProvider};
use chaaskit_queue_core::config::{ConfigValue, SchedulerConfig};
use chaaskit_queue_core::job::{now_ms, raw_json};
use chaaskit_queue_core::schedule::{self, Schedule};
use chaaskit_queue_core::scheduler::{RecurringInput, Scheduler};
use napi::bindgen_prelude::*;
use napi_derive::napi;

/// `registerRecurring`'s input.
#[napi(object)]
pub struct RecurringArgs {
    pub name: String,
    #[napi(js_name = "type")]
    pub job_type: String,
    pub payload_json: String,
    pub schedule: String,
    pub timezone: Option<String>,
    pub options: Option<EnqueueArgs>,
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

    /// `options_json`: the job options (`maxRetries`, `timeout`, `priority`, `deduplicationKey`).
    #[napi]
    pub async fn schedule(
        &self,
        job_type: String,
        payload_json: String,
        at_ms: f64,
        options: Option<EnqueueArgs>,
    ) -> Result<String> {
        guarded("Scheduler.schedule", async {
            let payload = raw_json(&payload_json)
                .map_err(|e| Error::new(Status::InvalidArg, format!("payload is not JSON: {e}")))?;
            let options = enqueue_options(options);
            let row = self
                .core
                .schedule(&job_type, &payload, at_ms as i64, &options)
                .await
                .map_err(napi_err)?;
            to_json(&row)
        })
        .await
    }

    #[napi]
    pub async fn get_scheduled_job(&self, id: String) -> Result<Option<String>> {
        guarded("Scheduler.getScheduledJob", async {
            let row = self.core.get_scheduled_job(&id).await.map_err(napi_err)?;
            row.as_ref().map(to_json).transpose()
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

    /// `registerRecurring`'s input, checked by `index.js` (the payload as JSON text).
    #[napi]
    pub async fn register_recurring(&self, input: RecurringArgs) -> Result<String> {
        guarded("Scheduler.registerRecurring", async {
            let payload = raw_json(&input.payload_json).map_err(|e| {
                Error::new(
                    Status::InvalidArg,
                    format!("input.payload is not JSON: {e}"),
                )
            })?;
            let input = RecurringInput {
                name: input.name,
                job_type: input.job_type,
                payload,
                schedule: input.schedule,
                timezone: input.timezone,
                options: enqueue_options(input.options),
            };
            to_json(
                &self
                    .core
                    .register_recurring(input)
                    .await
                    .map_err(napi_err)?,
            )
        })
        .await
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
    pub async fn list_recurring(&self) -> Result<String> {
        guarded("Scheduler.listRecurring", async {
            to_json(&self.core.list_recurring().await.map_err(napi_err)?)
        })
        .await
    }
}

/// `nextRuns(schedule, { timezone, from, count })`: the next `count` runs (default 1) of
/// `schedule` in `timezone` (default UTC) strictly after `from_ms` (default now), as epoch
/// ms. `index.js` checks the argument types; values are checked here.
#[napi(catch_unwind)]
pub fn next_runs(
    schedule: String,
    timezone: Option<String>,
    from_ms: Option<f64>,
    count: Option<f64>,
) -> Result<Vec<f64>> {
    let tz = timezone.as_deref().unwrap_or(schedule::DEFAULT_TIME_ZONE);
    let s = Schedule::parse(&schedule, tz).map_err(napi_err)?;
    let from = match from_ms {
        Some(ms) if ms.is_finite() && ms.abs() <= MAX_DATE_MS => ms.floor() as i64,
        Some(ms) => {
            return Err(invalid_arg(format!(
                "options.from must be a valid date, got {ms}"
            )))
        }
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

/// The largest epoch-ms value a JavaScript `Date` holds.
const MAX_DATE_MS: f64 = 8.64e15;

fn invalid_arg(msg: String) -> Error {
    Error::new(Status::InvalidArg, msg)
}
