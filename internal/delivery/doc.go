// Package delivery is dcon's delivery engine: it attempts every delivery the
// moment ingest hands it over, each on its own goroutine so nothing waits for an
// earlier event, records the outcome in the queue (ack, retry at a time, or
// expire at twelve hours), and polls the queue for what comes due: retries, and
// after a restart whatever a previous process had in flight.
//
// One attempt is the webhook package's business; when to try again is [Backoff]'s.
// The engine never imports a store: it works on the dcon.Queue seam.
package delivery
