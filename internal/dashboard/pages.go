package dashboard

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"dcon"
)

// figures are a connector's numbers as the pages show them, and as the live
// endpoints send them for dashboard.js to put in place.
type figures struct {
	Success string `json:"success"` // attempts answered 2xx, last three hours
	Errors  string `json:"errors"`  // failed attempts, last three hours
	P99     string `json:"p99"`     // 99th percentile attempt latency, last three hours
	Depth   string `json:"depth"`   // deliveries queued
	Oldest  string `json:"oldest"`  // age of the oldest queued event
}

// unknown is what a figure shows when it cannot be read.
const unknown = "—"

// figuresOf reads a connector's figures; one that cannot be read is logged
// and shown as unknown, so that one failure does not hide the rest.
func (d *Dashboard) figuresOf(ctx context.Context, connectorID string, now time.Time) figures {
	f := figures{Success: unknown, Errors: unknown, P99: unknown, Depth: unknown, Oldest: unknown}
	if m, err := d.cfg.Metrics.ConnectorMetrics(ctx, connectorID); err != nil {
		d.cfg.Logger.Warn("dashboard: connector metrics", "connector", connectorID, "err", err)
	} else {
		f.Success = strconv.FormatInt(m.SuccessCount, 10)
		f.Errors = strconv.FormatInt(m.ErrorCount, 10)
		f.P99 = formatDuration(m.Latency99p)
		if m.SuccessCount+m.ErrorCount == 0 {
			f.P99 = "no attempts"
		}
	}
	if q, err := d.cfg.Queue.QueueStats(ctx, connectorID); err != nil {
		d.cfg.Logger.Warn("dashboard: queue stats", "connector", connectorID, "err", err)
	} else {
		f.Depth = strconv.Itoa(q.Depth)
		f.Oldest = "empty"
		if !q.Oldest.IsZero() {
			f.Oldest = formatDuration(now.Sub(q.Oldest))
		}
	}
	return f
}

// status is a connector's status as the pages show it: in words, with a
// class that colours it.
type status struct {
	Text, Class, Reason string
}

func statusOfConnector(c *dcon.Connector) status {
	switch c.Status {
	case dcon.StatusActive:
		return status{Text: "Active", Class: "ok"}
	case dcon.StatusUserDisabled:
		return status{Text: "Disabled", Class: "off"}
	case dcon.StatusSystemDisabled:
		return status{Text: "Disabled by dcon", Class: "bad", Reason: c.StatusReason}
	}
	return status{Text: string(c.Status), Class: "off"}
}

// connectorRow is a connector in the project's table.
type connectorRow struct {
	ID, Name, Href, URL string
	Status              status
	Figures             figures
}

func (d *Dashboard) connectorRow(ctx context.Context, c *dcon.Connector, now time.Time) connectorRow {
	name := c.DisplayName
	if name == "" {
		name = c.ID
	}
	return connectorRow{ID: c.ID, Name: name, Href: connectorHref(c.ProjectID, c.ID), URL: displayURL(c.HTTP.URL),
		Status: statusOfConnector(c), Figures: d.figuresOf(ctx, c.ID, now)}
}

// displayURL is an endpoint URL without what may be secret in it: user
// info, query and fragment.
func displayURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// pageOf reads the page token of a list page.
func pageOf(r *http.Request) dcon.Page {
	return dcon.Page{Size: dcon.MaxPageSize, Token: r.URL.Query().Get("page")}
}

// nextHref is the link to the next page of a list, "" on the last.
func nextHref(path, token string) string {
	if token == "" {
		return ""
	}
	return path + "?page=" + url.QueryEscape(token)
}

// projectRow is a project in the list.
type projectRow struct {
	ID, Name, Href string
}

type projectsPage struct {
	Projects []projectRow
	Next     string
}

// projectsPage lists the projects the caller has a role on: all of them for
// an owner (and in development mode), its own for any other account.
func (d *Dashboard) projectsPage(w http.ResponseWriter, r *http.Request, rq *request) error {
	var ps []*dcon.Project
	var next string
	if p := rq.principal; p != nil && !p.Account.Owner {
		proj, err := d.cfg.Projects.Project(r.Context(), p.Account.Project)
		if err != nil && dcon.ErrorCode(err) != dcon.ENOTFOUND {
			return err
		}
		if proj != nil {
			ps = append(ps, proj)
		}
	} else {
		var err error
		if ps, next, err = d.cfg.Projects.ListProjects(r.Context(), pageOf(r)); err != nil {
			return err
		}
	}
	page := projectsPage{Next: nextHref(Prefix, next)}
	for _, p := range ps {
		page.Projects = append(page.Projects, projectRow{ID: p.ID, Name: projectName(p), Href: projectHref(p.ID)})
	}
	v := d.newView(r, rq, "Projects")
	v.Crumbs = nil
	v.Page = page
	d.render(w, r, http.StatusOK, "projects", v)
	return nil
}

type projectPage struct {
	Connectors  []connectorRow
	Next        string
	LiveURL     string
	DevicesHref string
}

// projectPage lists a project's connectors with their figures.
func (d *Dashboard) projectPage(w http.ResponseWriter, r *http.Request, rq *request) error {
	cs, next, err := d.cfg.Connectors.ListConnectors(r.Context(), rq.project.ID, pageOf(r))
	if err != nil {
		return err
	}
	now := d.cfg.Now()
	path := projectHref(rq.project.ID)
	page := projectPage{Next: nextHref(path, next), DevicesHref: path + "/devices", LiveURL: path + "/live"}
	if tok := r.URL.Query().Get("page"); tok != "" {
		page.LiveURL += "?page=" + url.QueryEscape(tok)
	}
	for _, c := range cs {
		page.Connectors = append(page.Connectors, d.connectorRow(r.Context(), c, now))
	}
	v := d.newView(r, rq, projectName(rq.project))
	v.Crumbs = v.Crumbs[:1]
	v.Page = page
	d.render(w, r, http.StatusOK, "project", v)
	return nil
}

// projectLive answers the project page's poll: the figures of its
// connectors, by id.
func (d *Dashboard) projectLive(w http.ResponseWriter, r *http.Request, rq *request) error {
	cs, _, err := d.cfg.Connectors.ListConnectors(r.Context(), rq.project.ID, pageOf(r))
	if err != nil {
		return err
	}
	now := d.cfg.Now()
	out := struct {
		Connectors map[string]figures `json:"connectors"`
	}{Connectors: make(map[string]figures, len(cs))}
	for _, c := range cs {
		out.Connectors[c.ID] = d.figuresOf(r.Context(), c.ID, now)
	}
	return writeJSON(w, out)
}

// deviceRow is a device in the list.
type deviceRow struct {
	ID, Type, Created string
	Labels            []label
}

type label struct{ Key, Value string }

type devicesPage struct {
	Devices []deviceRow
	Next    string
}

// devicesPage lists a project's devices and their labels.
func (d *Dashboard) devicesPage(w http.ResponseWriter, r *http.Request, rq *request) error {
	ds, next, err := d.cfg.Devices.ListDevices(r.Context(), rq.project.ID, pageOf(r))
	if err != nil {
		return err
	}
	page := devicesPage{Next: nextHref(projectHref(rq.project.ID)+"/devices", next)}
	for _, dev := range ds {
		row := deviceRow{ID: dev.ID, Type: string(dev.Type), Created: formatTime(dev.CreateTime)}
		for k, v := range dev.Labels {
			row.Labels = append(row.Labels, label{Key: k, Value: v})
		}
		slices.SortFunc(row.Labels, func(a, b label) int { return strings.Compare(a.Key, b.Key) })
		page.Devices = append(page.Devices, row)
	}
	v := d.newView(r, rq, "Devices")
	v.Page = page
	d.render(w, r, http.StatusOK, "devices", v)
	return nil
}

// How much of the delivery log and of the dead letters a connector's page
// shows.
const (
	logRows        = 50
	deadLetterRows = 50
	chartSeconds   = 120
)

// logRow is an attempt, or an expiry, of the delivery log.
type logRow struct {
	Time, EventID, Attempt, Result, Class, Status, Latency, Error string
}

func newLogRow(o *dcon.Outcome) logRow {
	row := logRow{Time: formatTime(o.At), EventID: o.EventID, Attempt: strconv.Itoa(o.Attempt),
		Status: unknown, Latency: unknown}
	switch {
	case o.Expired:
		row.Result, row.Class, row.Error = "Expired", "bad", o.LastError
	case o.Err == nil:
		row.Result, row.Class = "Delivered", "ok"
	default:
		row.Result, row.Class, row.Error = "Failed", "warn", o.Err.Error()
	}
	if o.StatusCode != 0 {
		row.Status = strconv.Itoa(o.StatusCode)
	}
	if !o.Expired {
		row.Latency = formatDuration(o.Latency)
	}
	row.Error = truncate(row.Error, 300)
	return row
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xc0 == 0x80 { // not in the middle of a UTF-8 sequence
		n--
	}
	return s[:n] + "…"
}

// deadRow is a dead letter.
type deadRow struct {
	EventID, Type, EventTime, Expired, Attempts, LastError string
}

type connectorPage struct {
	Connector    connectorRow
	Events       string // the event filter, in words
	LiveURL      string
	ReplayURL    string
	TestURL      string
	Notice       string // what the last action did
	LogAvailable bool
	Log          []logRow
	DeadLetters  []deadRow
	DeadMore     bool // there are more dead letters than shown
	CanReplay    bool
	CanTest      bool
	TestNote     string // why a test event would not reach the connector, if it would not
}

// connectorPage shows a connector: figures, live chart, delivery log, dead
// letters, and the actions.
func (d *Dashboard) connectorPage(w http.ResponseWriter, r *http.Request, rq *request) error {
	c, err := d.cfg.Connectors.Connector(r.Context(), rq.project.ID, r.PathValue("c"))
	if err != nil {
		return err
	}
	href := connectorHref(c.ProjectID, c.ID)
	page := connectorPage{
		Connector: d.connectorRow(r.Context(), c, d.cfg.Now()),
		Events:    "every event type",
		LiveURL:   href + "/live", ReplayURL: href + "/replay", TestURL: href + "/test-event",
		Notice:       notice(r.URL.Query()),
		LogAvailable: d.cfg.Log != nil,
		CanReplay:    d.cfg.Replay != nil && rq.canWrite(),
		CanTest:      d.cfg.Publisher != nil && rq.canWrite(),
	}
	if len(c.Events) > 0 {
		page.Events = joinEventTypes(c.Events)
	}
	switch {
	case c.Status != dcon.StatusActive:
		page.TestNote = "This connector is not active: it will not receive the test event."
	case !c.Wants(dcon.EventTouch):
		page.TestNote = "This connector does not take touch events: it will not receive the test event."
	}
	if d.cfg.Log != nil {
		outcomes := d.cfg.Log.Recent(c.ID, logRows)
		for i := range outcomes {
			page.Log = append(page.Log, newLogRow(&outcomes[i]))
		}
	}
	dead, err := d.cfg.Queue.DeadLetters(r.Context(), c.ID, deadLetterRows+1)
	if err != nil {
		return err
	}
	if len(dead) > deadLetterRows {
		dead, page.DeadMore = dead[:deadLetterRows], true
	}
	for _, dl := range dead {
		page.DeadLetters = append(page.DeadLetters, deadRow{EventID: dl.EventID, Type: string(dl.EventType),
			EventTime: formatTime(dl.EventTime), Expired: formatTime(dl.ExpireTime),
			Attempts: strconv.Itoa(dl.Attempts), LastError: truncate(dl.LastError, 300)})
	}
	v := d.newView(r, rq, page.Connector.Name)
	v.Page = page
	d.render(w, r, http.StatusOK, "connector", v)
	return nil
}

func joinEventTypes(ts []dcon.EventType) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

// notice says what the action that redirected to a page did, from the
// page's query (numbers and ids only, never free text).
func notice(q url.Values) string {
	if n, err := strconv.Atoi(q.Get("replayed")); err == nil && n >= 0 {
		if n == 1 {
			return "Replayed 1 dead letter: it is queued for delivery again."
		}
		return "Replayed " + strconv.Itoa(n) + " dead letters: they are queued for delivery again."
	}
	if id := q.Get("sent"); dcon.ValidID(id) {
		return "Sent test event " + id + "."
	}
	return ""
}

// connectorLive answers the connector page's poll: its figures and the live
// chart's last seconds.
func (d *Dashboard) connectorLive(w http.ResponseWriter, r *http.Request, rq *request) error {
	c, err := d.cfg.Connectors.Connector(r.Context(), rq.project.ID, r.PathValue("c"))
	if err != nil {
		return err
	}
	now := d.cfg.Now()
	return writeJSON(w, struct {
		Figures figures `json:"figures"`
		Points  []Point `json:"points"`
	}{d.figuresOf(r.Context(), c.ID, now), d.cfg.Live.Points(c.ID, now, chartSeconds)})
}

func writeJSON(w http.ResponseWriter, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
	return nil
}

// replay delivers one dead letter (form field eventId) or all of them (all)
// again, and goes back to the connector's page.
func (d *Dashboard) replay(w http.ResponseWriter, r *http.Request, rq *request) error {
	if d.cfg.Replay == nil {
		return dcon.Errorf(dcon.EUNAVAILABLE, "replay is not available on this server")
	}
	c, err := d.cfg.Connectors.Connector(r.Context(), rq.project.ID, r.PathValue("c"))
	if err != nil {
		return err
	}
	var req dcon.ReplayRequest
	switch id := r.PostFormValue("eventId"); {
	case r.PostFormValue("all") != "":
		req.All = true
	case dcon.ValidID(id):
		req.EventIDs = []string{id}
	default:
		return dcon.Errorf(dcon.EINVALID, "name a dead letter to replay, or all")
	}
	n, err := d.cfg.Replay.Replay(r.Context(), c.ProjectID, c.ID, req)
	if err != nil {
		return err
	}
	http.Redirect(w, r, connectorHref(c.ProjectID, c.ID)+"?replayed="+strconv.Itoa(n), http.StatusSeeOther)
	return nil
}

// testDeviceName is the name label of the device that sends test events.
const testDeviceName = "dcon dashboard test"

// testEvent publishes a touch event of the project's test device, made on
// first use, and goes back to the connector's page.
func (d *Dashboard) testEvent(w http.ResponseWriter, r *http.Request, rq *request) error {
	if d.cfg.Publisher == nil {
		return dcon.Errorf(dcon.EUNAVAILABLE, "test events are not available on this server")
	}
	c, err := d.cfg.Connectors.Connector(r.Context(), rq.project.ID, r.PathValue("c"))
	if err != nil {
		return err
	}
	dev, err := d.testDevice(r.Context(), c.ProjectID)
	if err != nil {
		return err
	}
	ev, err := d.cfg.Publisher.Publish(r.Context(), c.ProjectID, dev, dcon.EventTouch, json.RawMessage(`{}`))
	if err != nil {
		return err
	}
	http.Redirect(w, r, connectorHref(c.ProjectID, c.ID)+"?sent="+url.QueryEscape(ev.ID), http.StatusSeeOther)
	return nil
}

// testDeviceID is the id of a project's test device: always the same, so
// that it is made once, and in the form of an emulated device's id.
func testDeviceID(projectID string) string {
	sum := sha256.Sum256([]byte("dcon dashboard test device\x00" + projectID))
	enc := base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)
	return dcon.EmulatedDevicePrefix + enc.EncodeToString(sum[:12])
}

// testDevice returns the id of the project's test device, an emulated touch
// sensor labelled name=dcon dashboard test, made if it does not exist.
func (d *Dashboard) testDevice(ctx context.Context, projectID string) (string, error) {
	id := testDeviceID(projectID)
	_, err := d.cfg.Devices.Device(ctx, projectID, id)
	if dcon.ErrorCode(err) != dcon.ENOTFOUND {
		return id, err
	}
	now := d.cfg.Now().UTC()
	err = d.cfg.Devices.CreateDevice(ctx, &dcon.Device{
		ProjectID: projectID, ID: id, Type: dcon.DeviceTouch,
		Labels:     map[string]string{"name": testDeviceName, dcon.LabelEmulated: ""},
		CreateTime: now, UpdateTime: now,
	})
	if dcon.ErrorCode(err) == dcon.ECONFLICT { // made meanwhile by another request
		err = nil
	}
	return id, err
}
