package pebble

import (
	"testing"

	"dcon/internal/queuetest"
)

func TestBacklogConformanceInMemory(t *testing.T) {
	t.Parallel()
	queuetest.RunBacklog(t, memHarness{})
}

func TestBacklogConformanceOnDisk(t *testing.T) {
	t.Parallel()
	queuetest.RunBacklog(t, diskHarness{})
}
