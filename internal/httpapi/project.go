package httpapi

import (
	"net/http"

	"dcon"
)

// STUB: the projects resource is being written (owner: the projects engineer).

func (a *api) listProjects(w http.ResponseWriter, r *http.Request) error  { return notYet() }
func (a *api) createProject(w http.ResponseWriter, r *http.Request) error { return notYet() }
func (a *api) getProject(w http.ResponseWriter, r *http.Request) error    { return notYet() }
func (a *api) patchProject(w http.ResponseWriter, r *http.Request) error  { return notYet() }
func (a *api) deleteProject(w http.ResponseWriter, r *http.Request) error { return notYet() }

func notYet() error { return dcon.Errorf(dcon.ENOTFOUND, "not implemented yet") }
