//! Access logs, through tower-http's layers: every request gets an id (its `x-request-id`, or a
//! UUID made for it, sent back in the answer's `x-request-id`), and one INFO event of target
//! `ser_infer::access` when it is answered, in the request's span: `request_id`, `method`,
//! `route` (the path without its query, where clients may put anything), then `status`, `bytes`
//! and `ms`. Headers are never logged, so neither is a key. `--log-format json` writes each as
//! one JSON object.

use std::time::Duration;

use axum::body::HttpBody;
use axum::http::{HeaderName, Request, Response};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

/// The request id header.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// `router` with its access log: the id is set (outermost) before the span is made, and sent back.
pub(crate) fn logged<S: Clone + Send + Sync + 'static>(router: axum::Router<S>) -> axum::Router<S> {
    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &Request<_>| {
            let id = request.extensions().get::<RequestId>().and_then(|id| id.header_value().to_str().ok());
            tracing::info_span!(
                target: "ser_infer::access",
                "request",
                request_id = id.unwrap_or("-"),
                method = %request.method(),
                route = request.uri().path(),
            )
        })
        .on_request(())
        .on_response(|response: &Response<_>, latency: Duration, _span: &Span| {
            let bytes = HttpBody::size_hint(response.body()).exact();
            tracing::info!(
                target: "ser_infer::access",
                status = response.status().as_u16(),
                bytes,
                ms = latency.as_secs_f64() * 1000.0,
                "answered"
            );
        })
        .on_body_chunk(())
        .on_eos(())
        .on_failure(());
    router
        .layer(trace)
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}
