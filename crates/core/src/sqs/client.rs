//! The SQS client: one hyper 1 + rustls-on-ring HTTPS stack, the provider's only retry policy
//! (the SDK's standard mode, tuned here), and a counter of the HTTP requests it sends.

use super::{display_url, errors};
use crate::config::SqsConfig;
use crate::error::{QueueError, Result};
use aws_config::BehaviorVersion;
use aws_sdk_sqs::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_sqs::config::retry::RetryConfig;
use aws_sdk_sqs::config::{ConfigBag, Intercept, Region, RuntimeComponents};
use aws_sdk_sqs::error::BoxError;
use aws_sdk_sqs::types::QueueAttributeName;
use aws_sdk_sqs::Client;
use aws_smithy_http_client::tls;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Tries of one request (the first included) on a transient failure: the network, a timeout,
/// a throttle or a server error. With the backoff below, a request rides out an outage of a
/// few seconds (an endpoint restarting) before its caller sees the error.
pub const MAX_ATTEMPTS: u32 = 10;
/// The backoff before the first retry grows from this, doubling, with full jitter …
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// … up to this.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The retry policy of every request the provider sends, except the start-up check.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF)
}

/// The pause of a receive whose poll failed `failures` times in a row even after the SDK's
/// retries, before it polls again: [`INITIAL_BACKOFF`] doubling to [`MAX_BACKOFF`].
pub fn pause(failures: u32) -> Duration {
    INITIAL_BACKOFF
        .saturating_mul(1u32 << failures.min(10))
        .min(MAX_BACKOFF)
}

/// Counts the HTTP requests the client sends (retries included).
#[derive(Debug)]
struct CountRequests(Arc<AtomicU64>);

impl Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "CountRequests"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> std::result::Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// A client for `cfg`'s region and endpoint that counts its requests in `requests`.
pub async fn build(cfg: &SqsConfig, requests: Arc<AtomicU64>) -> Client {
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let shared = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https)
        .region(Region::new(cfg.region.clone()))
        .load()
        .await;
    let mut builder = aws_sdk_sqs::config::Builder::from(&shared)
        .retry_config(retry_config())
        .interceptor(CountRequests(requests));
    if let Some(endpoint) = &cfg.endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    Client::from_conf(builder.build())
}

/// `GetQueueAttributes` on a queue at start; whether it has a redrive policy. A wrong
/// endpoint should fail `connect` quickly, so this request keeps the SDK's default of three
/// tries.
pub async fn check_queue(client: &Client, url: &str, field: &str, endpoint: &str) -> Result<bool> {
    let out = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .customize()
        .config_override(aws_sdk_sqs::config::Builder::new().retry_config(RetryConfig::standard()))
        .send()
        .await
        .map_err(|e| {
            QueueError::Backend(format!(
                "cannot reach SQS queue {} (providerConfig.{field}) at {endpoint}: {}",
                display_url(url),
                errors::describe(&e)
            ))
        })?;
    Ok(out
        .attributes()
        .is_some_and(|a| a.contains_key(&QueueAttributeName::RedrivePolicy)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_is_capped() {
        assert_eq!(pause(0), Duration::from_millis(100));
        assert_eq!(pause(1), Duration::from_millis(200));
        assert_eq!(pause(5), Duration::from_millis(3200));
        assert_eq!(pause(6), MAX_BACKOFF);
        assert_eq!(pause(100), MAX_BACKOFF);
    }
}
