//! `GET /metrics`: the service's own counters in the Prometheus / OpenMetrics text format,
//! through prometheus-client, one registry a router (no global state, so several services in
//! one process count apart): requests by route and status, requests in flight, the time a
//! request waits for a classification slot and the time classification takes, live streams
//! open, seconds of audio classified, and the model (its directory, SHA-256 and labels) as an
//! info metric.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::Classifier;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    checkpoint: String,
    weights_sha256: String,
    labels: String,
}

/// What the service counts.
pub(crate) struct Metrics {
    registry: Registry,
    /// The paths requests are counted by (the routes served); any other path counts as `other`,
    /// so a client cannot grow the label set.
    routes: Vec<String>,
    requests: Family<RequestLabels, Counter>,
    pub(crate) in_flight: Gauge,
    pub(crate) queue_wait: Histogram,
    pub(crate) compute: Histogram,
    pub(crate) streams_open: Gauge,
    pub(crate) audio_seconds: Counter<f64, AtomicU64>,
}

impl Metrics {
    /// The counters of a service of `classifier` that serves `routes` (paths).
    pub(crate) fn new(classifier: &Classifier, routes: Vec<String>) -> Metrics {
        let mut registry = Registry::with_prefix("ser");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests answered, by route, method and status", requests.clone());
        let in_flight = Gauge::default();
        registry.register("http_requests_in_flight", "HTTP requests being answered", in_flight.clone());
        // 0.5 ms to about 33 s.
        let buckets = || exponential_buckets(0.0005, 2.0, 17);
        let queue_wait = Histogram::new(buckets());
        registry.register(
            "queue_wait_seconds",
            "Seconds a request waited for a classification slot (serve.max_concurrent)",
            queue_wait.clone(),
        );
        let compute = Histogram::new(buckets());
        registry.register("compute_seconds", "Seconds a request's decoding and classification took", compute.clone());
        let streams_open = Gauge::default();
        registry.register("streams_open", "Live streams (/v1/stream) open", streams_open.clone());
        let audio_seconds = Counter::<f64, AtomicU64>::default();
        registry.register("audio_seconds", "Seconds of audio classified (requests and streams)", audio_seconds.clone());
        let model = Info::new(ModelLabels {
            checkpoint: classifier.dir().display().to_string(),
            weights_sha256: classifier.weights_sha256().to_string(),
            labels: classifier.labels().join(","),
        });
        registry.register("model", "The model that answers", model);
        Metrics { registry, routes, requests, in_flight, queue_wait, compute, streams_open, audio_seconds }
    }

    /// The route a path counts under: itself when a route serves it, else `other`.
    pub(crate) fn route_of(&self, path: &str) -> &str {
        self.routes.iter().find(|r| *r == path).map_or("other", String::as_str)
    }

    pub(crate) fn count_request(&self, route: &str, method: &str, status: u16) {
        let labels = RequestLabels { route: route.to_string(), method: method.to_string(), status };
        self.requests.get_or_create(&labels).inc();
    }

    /// The text exposition, OpenMetrics 1.0 (which Prometheus reads).
    pub(crate) fn render(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("writing to a String");
        text
    }
}
