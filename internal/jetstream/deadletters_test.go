package jetstream

import (
	"testing"

	"dcon"
	"dcon/internal/jetstream/natstest"
	"dcon/internal/queuetest"
)

var _ dcon.DeadLetterQueue = (*Queue)(nil)

func TestDeadLetterConformance(t *testing.T) {
	t.Parallel()
	queuetest.RunDeadLetters(t, &harness{srv: natstest.StartServer(t, nil)})
}
