//! `NativeScheduler`: the core scheduler as a JavaScript class. Rows cross as JSON text
//! (dates as epoch ms), which `index.js` turns into objects with `Date`s.

use crate::bridge::{napi_err, to_json};
use crate::provider::NativeProvider;
use chaaskit_queue_core::config::SchedulerConfig;
use chaaskit_queue_core::job::{now_ms, raw_json, EnqueueOptions};
use chaaskit_queue_core::schedule::{self, Schedule};
use chaaskit_queue_core::scheduler::{RecurringInput, Scheduler};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use serde::Deserialize;
use serde_json::value::RawValue;

/// `registerRecurring`'s input as `index.js` serialises it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecurringArgs {
    name: String,
    #[serde(rename = "type")]
    job_type: String,
    payload: Box<RawValue>,
    schedule: String,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    options: EnqueueOptions,
}

#[napi]
pub struct NativeScheduler {
    core: Scheduler,
}

#[napi]
impl NativeScheduler {
    /// `config_json`: the `scheduler` config block. No database connection is made yet.
    #[napi(constructor)]
    pub fn new(provider: &NativeProvider, config_json: String) -> Result<Self> {
        let config: SchedulerConfig = serde_json::from_str(&config_json).map_err(|e| {
            Error::new(Status::InvalidArg, format!("invalid scheduler config: {e}"))
        })?;
        let shared = provider.shared();
        // The database pool is made inside the runtime it will run on.
        let core =
            within_runtime_if_available(|| Scheduler::open(shared, config)).map_err(napi_err)?;
        Ok(NativeScheduler { core })
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
        self.core.migrate().await.map_err(napi_err)
    }

    #[napi]
    pub async fn start(&self) -> Result<()> {
        self.core.start().await.map_err(napi_err)
    }

    #[napi]
    pub async fn stop(&self) -> Result<()> {
        self.core.stop().await;
        Ok(())
    }

    /// One poll now; returns `{ scheduled, recurring, failed }` as JSON text.
    #[napi]
    pub async fn poll_once(&self) -> Result<String> {
        let o = self.core.poll_once().await.map_err(napi_err)?;
        Ok(format!(
            r#"{{"scheduled":{},"recurring":{},"failed":{}}}"#,
            o.scheduled, o.recurring, o.failed
        ))
    }

    /// `options_json`: the job options (`maxRetries`, `timeout`, `priority`, `deduplicationKey`).
    #[napi]
    pub async fn schedule(
        &self,
        job_type: String,
        payload_json: String,
        at_ms: f64,
        options_json: Option<String>,
    ) -> Result<String> {
        let payload = raw_json(&payload_json)
            .map_err(|e| Error::new(Status::InvalidArg, format!("payload is not JSON: {e}")))?;
        let options: EnqueueOptions = match options_json {
            Some(o) => serde_json::from_str(&o)
                .map_err(|e| Error::new(Status::InvalidArg, format!("invalid options: {e}")))?,
            None => EnqueueOptions::default(),
        };
        let row = self
            .core
            .schedule(&job_type, &payload, at_ms as i64, &options)
            .await
            .map_err(napi_err)?;
        to_json(&row)
    }

    #[napi]
    pub async fn get_scheduled_job(&self, id: String) -> Result<Option<String>> {
        let row = self.core.get_scheduled_job(&id).await.map_err(napi_err)?;
        row.as_ref().map(to_json).transpose()
    }

    #[napi]
    pub async fn cancel_scheduled_job(&self, id: String) -> Result<bool> {
        self.core.cancel_scheduled_job(&id).await.map_err(napi_err)
    }

    /// `input_json`: `{ name, type, payload, schedule, timezone?, options? }`.
    #[napi]
    pub async fn register_recurring(&self, input_json: String) -> Result<String> {
        let a: RecurringArgs = serde_json::from_str(&input_json)
            .map_err(|e| Error::new(Status::InvalidArg, format!("invalid recurring job: {e}")))?;
        let input = RecurringInput {
            name: a.name,
            job_type: a.job_type,
            payload: a.payload,
            schedule: a.schedule,
            timezone: a.timezone,
            options: a.options,
        };
        to_json(
            &self
                .core
                .register_recurring(input)
                .await
                .map_err(napi_err)?,
        )
    }

    #[napi]
    pub async fn enable_recurring(&self, name: String) -> Result<bool> {
        self.core.enable_recurring(&name).await.map_err(napi_err)
    }

    #[napi]
    pub async fn disable_recurring(&self, name: String) -> Result<bool> {
        self.core.disable_recurring(&name).await.map_err(napi_err)
    }

    #[napi]
    pub async fn delete_recurring(&self, name: String) -> Result<bool> {
        self.core.delete_recurring(&name).await.map_err(napi_err)
    }

    #[napi]
    pub async fn list_recurring(&self) -> Result<String> {
        to_json(&self.core.list_recurring().await.map_err(napi_err)?)
    }
}

/// `nextRuns(schedule, { timezone, from, count })`: the next `count` runs (default 1) of
/// `schedule` in `timezone` (default UTC) strictly after `from_ms` (default now), as epoch
/// ms. `index.js` checks the argument types; values are checked here.
#[napi]
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
