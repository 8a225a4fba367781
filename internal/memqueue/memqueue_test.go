package memqueue_test

import (
	"testing"

	"dcon"
	"dcon/internal/memqueue"
	"dcon/internal/queuetest"
)

// harness opens fresh in-memory queues; a crash loses nothing, since nothing
// is ever unsynced, so Crash returns the same queue.
type harness struct{}

func (harness) Open(t *testing.T) dcon.Queue                { return memqueue.New() }
func (harness) Crash(t *testing.T, q dcon.Queue) dcon.Queue { return q }

func TestConformance(t *testing.T) {
	t.Parallel()
	queuetest.Run(t, harness{})
}

func TestBacklogConformance(t *testing.T) {
	t.Parallel()
	queuetest.RunBacklog(t, harness{})
}
