package httpapi

import (
	"context"
	"net/http"
	"strconv"

	"dcon"
)

// pageOf reads a list request's page_size and page_token, or their camelCase
// forms pageSize and pageToken, which the original product's Python client
// sends. The size is 1 to dcon.MaxPageSize; 0 or none means the default,
// dcon.MaxPageSize, and larger sizes are clamped to it.
func pageOf(r *http.Request) (dcon.Page, error) {
	q := r.URL.Query()
	p := dcon.Page{Token: q.Get("page_token")}
	if p.Token == "" {
		p.Token = q.Get("pageToken")
	}
	var err error
	p.Size, err = sizeOf(r, dcon.MaxPageSize, dcon.MaxPageSize)
	return p, err
}

// sizeOf reads page_size (or pageSize): 1 to most, def when absent or 0,
// larger values clamped to most. Its error names the parameter as the
// request spelled it.
func sizeOf(r *http.Request, def, most int) (int, error) {
	q := r.URL.Query()
	name, s := "page_size", q.Get("page_size")
	if s == "" {
		name, s = "pageSize", q.Get("pageSize")
	}
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, dcon.Errorf(dcon.EINVALID, "%s %q is not a number from 1 to %d", name, s, most)
	}
	if n == 0 {
		return def, nil
	}
	return min(n, most), nil
}

// listPage answers one page of a project's resources: the items under key,
// converted to their resource shape, and "nextPageToken" ("" on the last page).
func listPage[T, R any](a *api, w http.ResponseWriter, r *http.Request, key string,
	list func(ctx context.Context, projectID string, p dcon.Page) ([]T, string, error), resource func(T) R) error {
	p, err := a.projectID(r)
	if err != nil {
		return err
	}
	page, err := pageOf(r)
	if err != nil {
		return err
	}
	items, next, err := list(r.Context(), p, page)
	if err != nil {
		return err
	}
	out := make([]R, 0, len(items))
	for _, it := range items {
		out = append(out, resource(it))
	}
	// encoding/json writes map keys sorted: the list key comes before "nextPageToken".
	return a.respond(w, http.StatusOK, map[string]any{key: out, "nextPageToken": next})
}
