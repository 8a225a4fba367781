package httpapi

import "net/http"

// STUB: :metrics is being written (owner: the metrics engineer).

func (a *api) connectorMetrics(w http.ResponseWriter, r *http.Request, projectID, connectorID string) error {
	return notYet()
}
