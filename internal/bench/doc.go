// Package bench is the instrument behind `dcon bench`: an end-to-end
// experiment on one machine. It starts a dcon server as a child process (or
// uses a running one), starts its own receivers on 127.0.0.1, drives load
// through the /v2 API, and reports what arrived at the receivers.
//
// Every scenario first measures the raw ceiling: the same HTTP client posting
// bodies of the same shape straight to the same kind of receiver with the
// same concurrency (or the same pace), no dcon in between. dcon's figures are
// then given beside it, as a ratio.
//
// How events are recognised at the receiver:
//
//   - Every published event is a temperature whose value is the publisher's
//     send time, in microseconds since the start of the run on the monotonic
//     clock. The receiver reads it back from the body it holds, so latency
//     (publisher sends → receiver holds the body) needs no shared map and is
//     right even when the delivery arrives before the publish answer.
//   - Deliveries are counted by eventId per connector (a [Sink]); the event ids
//     acknowledged by the publish answers are what must arrive. An
//     acknowledged event that never arrives is lost; a second arrival is a
//     duplicate.
//
// Everything the bench starts — the server process, receivers, load — is
// stopped when [Run] returns, on error and on cancellation too.
package bench
