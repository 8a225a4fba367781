package dashboard

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"time"

	"dcon"
)

//go:embed templates static
var assets embed.FS

// parsePages parses every page with the layout. Each page is a template
// file that defines "content", shown inside layout.html.
func parsePages() (map[string]*template.Template, error) {
	pageNames := []string{"login", "projects", "project", "connector", "devices", "error"}
	layout, err := template.ParseFS(assets, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("dashboard: parse the layout: %w", err)
	}
	pages := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.Must(layout.Clone()).ParseFS(assets, "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("dashboard: parse page %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// view is what every page gets: the layout's parts, and Page, the page's
// own data.
type view struct {
	Title   string
	Dev     bool   // development mode: no authentication
	Account string // who is logged in; "" when nobody is
	Role    dcon.Role
	CSRF    string // the token of the page's forms
	Crumbs  []crumb
	Page    any
}

// crumb is a link of the breadcrumb trail.
type crumb struct {
	Name, Href string
}

func (d *Dashboard) newView(r *http.Request, rq *request, title string) *view {
	v := &view{Title: title, Dev: d.cfg.Auth == nil, Crumbs: []crumb{{Name: "Projects", Href: Prefix}}}
	if rq == nil {
		return v
	}
	if p := rq.principal; p != nil {
		v.Account = p.Account.DisplayName
		if v.Account == "" {
			v.Account = p.Account.Email
		}
		v.CSRF = d.csrfToken(rq.session)
	}
	v.Role = rq.role
	if rq.project != nil {
		v.Crumbs = append(v.Crumbs, crumb{Name: projectName(rq.project), Href: projectHref(rq.project.ID)})
	}
	return v
}

// render writes a page, whole or not at all.
func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, status int, page string, v *view) {
	var buf bytes.Buffer
	if err := d.pages[page].ExecuteTemplate(&buf, "layout", v); err != nil {
		d.cfg.Logger.Error("dashboard: render", "page", page, "path", r.URL.Path, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func projectName(p *dcon.Project) string {
	if p.DisplayName != "" {
		return p.DisplayName
	}
	return p.ID
}

func projectHref(id string) string { return Prefix + "projects/" + id }

func connectorHref(projectID, id string) string {
	return projectHref(projectID) + "/connectors/" + id
}

// formatDuration writes a duration for people: "420 µs", "12 ms", "1.4 s",
// "3 min 20 s", "5 h 2 min", "2 d 4 h".
func formatDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0 s"
	case d < time.Millisecond:
		return strconv.FormatInt(d.Microseconds(), 10) + " µs"
	case d < 10*time.Millisecond:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + " ms"
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + " ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + " s"
	case d < time.Hour:
		return fmt.Sprintf("%d min %d s", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%d d %d h", int(d.Hours())/24, int(d.Hours())%24)
}

// formatTime writes a time in UTC, to the second.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
}
