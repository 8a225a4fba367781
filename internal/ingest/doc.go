// Package ingest turns a published event into deliveries: it validates the event,
// routes it to every active connector of its project whose filter wants it,
// renders one body per connector (each with its own labels), stores the copies
// durably in the queue, and only then hands them to the delivery engine and
// answers the publisher.
//
// [Router] is the in-memory index of connectors that routing reads on every
// event; it wraps the connector store so that the index changes exactly when the
// store does.
package ingest
