package memqueue_test

import (
	"testing"

	"dcon/internal/queuetest"
)

func TestDeadLetterConformance(t *testing.T) {
	t.Parallel()
	queuetest.RunDeadLetters(t, harness{})
}
