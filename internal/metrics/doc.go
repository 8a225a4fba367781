// Package metrics exposes what dcon is doing as Prometheus metrics, on a
// registry its caller passes in (never the default one):
//
//   - [Metrics.Observe] implements delivery.Observer: attempts by outcome and
//     error class, attempt and end-to-end (publish → 2xx) latency, retries
//     scheduled, expiries. It is called for every attempt and must not
//     allocate: each connector's label-bound counters and histograms are made
//     once and cached.
//   - [Metrics.Dropped] counts the deliveries dropped with a connector's queue
//     (when it is disabled or deleted); ingest.Router calls it.
//   - [Metrics.ObserveCommit] times the store's synced commits;
//     pebble.Options.OnSyncedCommit calls it.
//   - [Metrics.Ingest] wraps the ingest path: events by result (ok, or the
//     dcon error code) and request latency.
//   - At scrape time, a collector asks a [dcon.QueueInspector] for every
//     connector's queue depth and oldest event, and a [FlowReader], when
//     there is one, for its flow-control window; connectors that no longer
//     exist lose their series then.
//   - Go runtime and process collectors.
//
// Labels are bounded: at most the connector id, never an event id; with
// Config.PerConnector off (dcon serve --metrics-per-connector=false) there is
// no connector label at all, for fleets of very many connectors. The metric
// names and their meaning are listed in docs/operations.md.
package metrics
