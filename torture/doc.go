// Package torture is dcon's torture suite, "nothing lost, ever": tests that
// drive the real dcon binary (and, for what needs it, hooks that only tests
// use) against real TLS receivers, and check by eventId that every event
// acknowledged at publish is delivered at least once, or expired and recorded
// as a dead letter 12 hours after its event.
//
// The scenarios, one test each: crash loop (SIGKILL at random moments),
// chaos receivers, expiry, disk faults, shutdown, clock jumps and
// configuration churn. docs/reliability.md states the promises they check and
// the figures of the last long run.
//
// The short version runs with the other tests (go test -race ./...) in a
// couple of minutes. The long version runs on demand:
//
//	DCON_TORTURE=long go test -v -timeout 3h ./torture/
//
// The binary is built without the race detector unless DCON_TORTURE_RACE=1.
// Every check fails the test; there is no list of known bugs. Each scenario
// logs its figures as a row of the table in docs/reliability.md:
//
//	go test -v ./torture/ | sed -n 's/.*FIGURES //p'
//
// When deliveries stall, the chaos test captures why before failing (see
// diagnoseStall): dcon's goroutines, the suite's own, what the receiver saw
// of each event, and each delivery's record in the stopped server's store.
package torture
