// Package dcon is the domain of the Data Connector service: events published by
// sensors, the devices that publish them, the data connectors that forward them to
// their subscribers' endpoints, and the deliveries — one durable copy of an event
// per connector — that wait in a queue until the endpoint acknowledges them or the
// event is twelve hours old.
//
// The package imports only the standard library. Adapters live in internal/:
// internal/pebble stores everything on the embedded Pebble engine, internal/ingest
// validates and routes events, internal/delivery sends them, internal/httpapi
// serves the /v2 API. cmd/dcon wires them together.
//
// Two seams are shared by several packages and so are declared here, each with a
// conformance suite: [Queue] (internal/queuetest) and the configuration stores
// [ConnectorStore] and [DeviceStore].
package dcon
