//! Per-client request rates on `/v1/*`: tower_governor's layer (governor's GCRA), keyed by the
//! client's API key (its hash, never the key) when the service has keys, and by its address
//! otherwise. A client over its rate gets 429 with `Retry-After`; others are not slowed.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use tower_governor::GovernorLayer;
use tower_governor::errors::GovernorError;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::KeyExtractor;

use crate::config::RateLimit;
use crate::state::ApiError;

/// Who a request comes from, for its rate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Client {
    /// The SHA-256 of the API key it presented (the key itself is not kept).
    Key([u8; 32]),
    Address(IpAddr),
    /// A router served without connection info (embedded elsewhere): one shared allowance.
    Unknown,
}

#[derive(Debug, Clone, Copy)]
struct ClientOf {
    by_api_key: bool,
}

impl KeyExtractor for ClientOf {
    type Key = Client;

    fn extract<T>(&self, request: &Request<T>) -> Result<Client, GovernorError> {
        if self.by_api_key
            && let Some(key) = crate::auth::presented(request.headers())
        {
            return Ok(Client::Key(crate::auth::key_hash(key)));
        }
        Ok(request.extensions().get::<ConnectInfo<SocketAddr>>().map_or(Client::Unknown, |c| Client::Address(c.0.ip())))
    }
}

/// `router` with each client held to `rate` (by its API key when `by_api_key`, else by address).
/// Forgotten clients are swept every minute while the router lives.
pub(crate) fn limit<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    rate: RateLimit,
    by_api_key: bool,
) -> Router<S> {
    let config = GovernorConfigBuilder::default()
        .key_extractor(ClientOf { by_api_key })
        .period(Duration::from_secs_f64(1.0 / rate.per_s.max(1) as f64))
        .burst_size(rate.burst.max(1))
        .finish()
        .expect("a positive period and burst");
    let limiter = std::sync::Arc::downgrade(config.limiter());
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                match limiter.upgrade() {
                    Some(limiter) => limiter.retain_recent(),
                    None => break,
                }
            }
        });
    }
    let layer = GovernorLayer::new(config).error_handler(move |e| match e {
        GovernorError::TooManyRequests { wait_time, headers } => {
            let message = format!(
                "too many requests from this client: {} a second, {} at once; retry after {wait_time} s",
                rate.per_s, rate.burst
            );
            let mut response = ApiError(StatusCode::TOO_MANY_REQUESTS, message).into_response();
            if let Some(headers) = headers {
                response.headers_mut().extend(headers);
            }
            response
        }
        other => ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("rate limit: {other}")).into_response(),
    });
    router.layer(layer)
}
