package ingest

import (
	"context"

	"dcon"
)

// STUB: being written by the sync engineer.

// PublishBatch publishes many events of a project.
func (in *Ingester) PublishBatch(ctx context.Context, projectID string, reqs []dcon.PublishRequest) []dcon.PublishResult {
	return nil
}

// Sync re-sends the latest events of a project's devices through one connector.
func (in *Ingester) Sync(ctx context.Context, projectID, connectorID string) (int, error) {
	return 0, nil
}
