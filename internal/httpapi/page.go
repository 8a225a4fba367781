package httpapi

import (
	"net/http"
	"strconv"

	"dcon"
)

// pageOf reads a list request's page_size and page_token (or pageToken).
// page_size is 1 to dcon.MaxPageSize; 0 or none means the default,
// dcon.MaxPageSize, and larger sizes are clamped to it.
func pageOf(r *http.Request) (dcon.Page, error) {
	q := r.URL.Query()
	p := dcon.Page{Size: dcon.MaxPageSize, Token: q.Get("page_token")}
	if p.Token == "" {
		p.Token = q.Get("pageToken")
	}
	if s := q.Get("page_size"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return dcon.Page{}, dcon.Errorf(dcon.EINVALID, "page_size %q is not a number from 1 to %d", s, dcon.MaxPageSize)
		}
		if n > 0 {
			p.Size = min(n, dcon.MaxPageSize)
		}
	}
	return p, nil
}
