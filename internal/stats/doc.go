// Package stats keeps each data connector's delivery statistics: the counts
// and latency that `:metrics` answers, and how long a connector has been
// failing, from which the [Watchdog] disables connectors that failed for too
// long (SYSTEM_DISABLED).
//
// # The tracker
//
// [Tracker] implements the delivery engine's Observer: the engine calls
// [Tracker.Observe] after every attempt, from as many goroutines as there are
// attempts under way. Observe takes a shard's read lock to find the connector,
// then the connector's own lock for a few additions; it does not allocate
// (BenchmarkObserve), except once per connector, at its first attempt.
//
// Per connector it keeps a ring of [Buckets] time buckets of [BucketWidth]
// each (18 × 10 minutes = [dcon.MetricsWindow]). An attempt counts in the
// bucket of its time; a bucket is reset when the ring comes back to it, so old
// attempts fall out as time moves. [Tracker.ConnectorMetrics] sums the buckets
// of the last Buckets bucket widths, the current one included: the window
// covers between 2 h 50 min and 3 h, depending on where in the current bucket
// the clock is.
//
// Each bucket holds the success and error counts and a latency histogram of
// [Bins] log-scale bins: bin 0 holds round trips up to 100 µs, bin i those in
// (100 µs × 1.25^(i−1), 100 µs × 1.25^i], and the last bin everything above
// 100 µs × 1.25^62 ≈ 102 s (an attempt ends at the webhook timeout, 10 s by
// default, long before). The 99th percentile is reported as the upper bound of
// the bin that holds it, so it is never below the true value and at most 25 %
// above it (less than 100 µs above it for round trips under 100 µs).
// Successes and failures both count in the histogram: latency99p is about
// attempts, as the counts are.
//
// Memory: a connector with traffic costs one allocation of about 5 KiB
// (18 buckets × 272 bytes, plus its lock and times, in Go's 5376-byte size
// class), plus its map entry; a connector without traffic costs nothing.
// [Tracker.Forget] drops a connector's state; the [Watchdog] forgets
// connectors that no longer exist.
//
// # Failing since
//
// Per connector the tracker also keeps failingSince: the time of the first
// failed attempt after the last success, zero while the last attempt
// succeeded. Attempts are observed in roughly, not exactly, the order they
// ended: a failure older than the last success does not start a failure
// streak, and a success older than the start of the streak does not end it.
//
// # Persistence
//
// A restart does not zero the figures: [Tracker.Load] reads every connector's
// state from a [Store] at start, and between [Tracker.Start] and [Tracker.Stop]
// the connectors observed since the last flush are written every
// FlushInterval (10 s by default) and once more on Stop. A crash loses at most
// the attempts of one interval. internal/pebble implements Store.
//
// One connector's state is a compact binary value, version 1:
//
//	byte    version (1)
//	uvarint bucket width in seconds (600)
//	varint  failingSince, Unix nanoseconds (0: none)
//	varint  last success, Unix nanoseconds (0: none)
//	uvarint number of buckets that hold attempts, at most Buckets, then each:
//	  varint  bucket number (Unix time / width), strictly increasing,
//	          all within Buckets of each other
//	  uvarint successes, uvarint errors
//	  uvarint number of non-empty bins, then each:
//	    byte    bin index, strictly increasing, below Bins
//	    uvarint count (the counts add up to successes + errors)
//
// Decoding checks all of it and fails with an error, never a panic
// (FuzzDecode). A state written with another bucket width keeps its
// failingSince and last success and drops its buckets.
//
// # A fleet
//
// On a fleet of nodes that share a Store (internal/jetstream), each node's
// Tracker counts the attempts that node made and flushes them under its own
// name. [Fleet] answers `:metrics` for the whole fleet: this node's live
// figures plus every other node's last flushed state, bucket by bucket in
// the same window. Counts add up; latency histograms add up bin by bin, so
// the fleet's latency99p is the percentile of the union of every node's
// attempts, with the same accuracy as one node's (never below the true
// value, at most 25 % above it) — not an average or maximum of per-node
// percentiles. Another node's attempts appear at its next flush (10 s), and
// a dead node's keep counting until they leave the window.
//
// # Auto-disable
//
// The [Watchdog] checks every CheckInterval (1 minute by default) for ACTIVE
// connectors that have failed, with no success, for AutoDisableAfter
// ([dcon.AutoDisableAfter], 5 days, by default), and sets them SYSTEM_DISABLED
// with a StatusReason such as
//
//	no successful delivery since 2026-11-20T08:00:00.000000Z (5 days)
//
// The failure streak is counted from the later of failingSince and the
// connector's UpdateTime. A user revives a disabled connector by setting it
// ACTIVE again (PATCH), which sets its UpdateTime: the connector then has a
// fresh AutoDisableAfter before it can be disabled again, even though the
// tracker's failingSince, which only a success resets, is older. Any other
// change to the connector (a new URL, say) likewise starts the period again.
package stats
