// Package delivery is dcon's delivery engine: it attempts every delivery the
// moment ingest hands it over, each on its own goroutine so nothing waits for an
// earlier event, records the outcome in the queue (ack, retry at a time, or
// expire at twelve hours), and polls the queue for what comes due: retries, and
// after a restart whatever a previous process had in flight.
//
// Each connector has its own flow control (see [FlowConfig]): a window of
// attempts in flight that grows on success and halves on failure, pauses on
// Retry-After, and probes a dead endpoint one request at a time. Deliveries
// that do not fit are parked in the queue and drained oldest first.
//
// One attempt is the webhook package's business; when to try again is [Backoff]'s.
// The engine never imports a store: it works on the dcon.Queue seam.
package delivery
