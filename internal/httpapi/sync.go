package httpapi

import "net/http"

// STUB: :sync and :batchPublish are being written (owner: the sync engineer).

func (a *api) postConnector(w http.ResponseWriter, r *http.Request) error { return notYet() }
func (a *api) batchPublish(w http.ResponseWriter, r *http.Request) error  { return notYet() }
