package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"dcon/internal/deliverylog"
	"dcon/internal/httpapi"
)

// deliveryLogAPI serves the API's delivery log from the node's.
type deliveryLogAPI struct{ log *deliverylog.Log }

func (a deliveryLogAPI) Latest(connectorID string, limit int) ([]httpapi.DeliveryRecord, uint64) {
	entries, next := a.log.Latest(connectorID, limit)
	return deliveryRecords(entries), next
}

func (a deliveryLogAPI) Since(connectorID string, after uint64, limit int) ([]httpapi.DeliveryRecord, uint64) {
	entries, next := a.log.Since(connectorID, after, limit)
	return deliveryRecords(entries), next
}

func deliveryRecords(entries []deliverylog.Entry) []httpapi.DeliveryRecord {
	out := make([]httpapi.DeliveryRecord, len(entries))
	for i, e := range entries {
		out[i] = httpapi.DeliveryRecord{
			Seq: e.Seq, At: e.At, EventID: e.EventID, Attempt: e.Attempt, StatusCode: e.StatusCode,
			Latency: e.Latency, Outcome: e.Outcome, ErrorClass: e.ErrorClass, Error: e.Error,
		}
	}
	return out
}

// cliDelivery is one entry of the delivery log, as the API answers it.
type cliDelivery struct {
	Seq        uint64  `json:"seq"`
	Time       string  `json:"time"`
	EventID    string  `json:"eventId"`
	Attempt    int     `json:"attempt"`
	StatusCode int     `json:"statusCode"`
	LatencyMs  float64 `json:"latencyMs"`
	Outcome    string  `json:"outcome"`
	ErrorClass string  `json:"errorClass"`
	Error      string  `json:"error"`
}

// deliveriesPage is the answer of GET …/deliveries.
type deliveriesPage struct {
	Deliveries []cliDelivery `json:"deliveries"`
	NextAfter  uint64        `json:"nextAfter"`
}

func deliveryColumns() []string {
	return []string{"TIME", "EVENT", "ATTEMPT", "STATUS", "LATENCY", "OUTCOME", "ERROR"}
}

func deliveryRow(d cliDelivery) []string {
	status, latency := "", ""
	if d.StatusCode != 0 {
		status = strconv.Itoa(d.StatusCode)
	}
	if d.Outcome != "EXPIRED" {
		latency = strconv.FormatFloat(d.LatencyMs, 'f', -1, 64) + "ms"
	}
	msg := d.Error
	if d.ErrorClass != "" && d.ErrorClass != "expired" {
		msg = d.ErrorClass + ": " + d.Error
	}
	return []string{d.Time, d.EventID, strconv.Itoa(d.Attempt), status, latency, d.Outcome, msg}
}

// followEvery is how often `connectors deliveries --follow` asks for more.
const followEvery = time.Second

func runConnectorsDeliveries(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := verbFlags("connectors deliveries <connector-id>",
		"Show a data connector's recent delivery attempts and expiries on the server, newest first; with --follow, oldest first and then as they happen, until interrupted. The log is kept in memory: a restart of the server clears it.",
		"  dcon connectors deliveries c16pegipidie7lltrefg --project office\n  dcon connectors deliveries c16pegipidie7lltrefg --project office --follow\n", stderr)
	o := addClientFlags(fs, true)
	follow := fs.Bool("follow", false, "keep showing new attempts as they happen (every second), until interrupted")
	limit := fs.Int("limit", 100, "how many recent attempts to show (1 to 1000)")
	c, id, err := parseClientID(fs, o, args, "the data connector id")
	if err != nil {
		return err
	}
	if *limit < 1 || *limit > httpapi.MaxDeliveries {
		return usagef("--limit %d: use 1 to %d", *limit, httpapi.MaxDeliveries)
	}
	path := connectorPath(o.project, id) + "/deliveries"
	raw, err := c.get(ctx, path, url.Values{"pageSize": {strconv.Itoa(*limit)}})
	if err != nil {
		return err
	}
	if !*follow {
		if o.output == "json" {
			return printJSON(stdout, raw)
		}
		var page deliveriesPage
		if err := json.Unmarshal(raw, &page); err != nil {
			return fmt.Errorf("read the server's answer: %w", err)
		}
		t := newTable(stdout, deliveryColumns()...)
		for _, d := range page.Deliveries {
			t.row(deliveryRow(d)...)
		}
		return t.flush()
	}
	return followDeliveries(ctx, c, path, raw, o.output, followEvery, stdout)
}

// followDeliveries prints the entries of first, oldest first, then polls for
// newer ones every interval until ctx ends: a line per entry (a JSON object
// per line with --output json).
func followDeliveries(ctx context.Context, c *cliClient, path string, first json.RawMessage, output string, every time.Duration, w io.Writer) error {
	var page deliveriesPage
	if err := json.Unmarshal(first, &page); err != nil {
		return fmt.Errorf("read the server's answer: %w", err)
	}
	for i, j := 0, len(page.Deliveries)-1; i < j; i, j = i+1, j-1 {
		page.Deliveries[i], page.Deliveries[j] = page.Deliveries[j], page.Deliveries[i]
	}
	const rowFormat = "%-27s  %-20s  %7s  %6s  %9s  %-9s  %s\n"
	if output != "json" {
		cols := deliveryColumns()
		fmt.Fprintf(w, rowFormat, cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6])
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		for _, d := range page.Deliveries {
			if output == "json" {
				line, err := json.Marshal(d)
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "%s\n", line)
				continue
			}
			r := deliveryRow(d)
			for i, cell := range r {
				if cell == "" {
					r[i] = "-"
				}
			}
			fmt.Fprintf(w, rowFormat, r[0], r[1], r[2], r[3], r[4], r[5], r[6])
		}
		select {
		case <-ctx.Done():
			return nil // interrupted: the way --follow ends
		case <-tick.C:
		}
		after := page.NextAfter
		raw, err := c.get(ctx, path, url.Values{"after": {strconv.FormatUint(after, 10)}, "pageSize": {strconv.Itoa(httpapi.MaxDeliveries)}})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		page = deliveriesPage{}
		if err := json.Unmarshal(raw, &page); err != nil {
			return fmt.Errorf("read the server's answer: %w", err)
		}
	}
}

// cliDeadLetter is a dead letter, as the API answers it.
type cliDeadLetter struct {
	EventID    string `json:"eventId"`
	EventTime  string `json:"eventTime"`
	ExpireTime string `json:"expireTime"`
	Attempts   int    `json:"attempts"`
	LastError  string `json:"lastError"`
}

func deadLetterColumns() []string {
	return []string{"EVENT", "EVENT TIME", "EXPIRED", "ATTEMPTS", "LAST ERROR"}
}

func deadLetterRow(d cliDeadLetter) []string {
	return []string{d.EventID, d.EventTime, d.ExpireTime, strconv.Itoa(d.Attempts), d.LastError}
}

// listDeadLetters reads every page of a connector's dead letters.
func listDeadLetters(ctx context.Context, c *cliClient, path string) ([]json.RawMessage, error) {
	var all []json.RawMessage
	q := url.Values{"page_size": {strconv.Itoa(httpapi.MaxDeadLetters)}}
	for {
		raw, err := c.get(ctx, path, q)
		if err != nil {
			return nil, err
		}
		var page struct {
			DeadLetters   []json.RawMessage `json:"deadLetters"`
			NextPageToken string            `json:"nextPageToken"`
		}
		if err := json.Unmarshal(raw, &page); err != nil {
			return nil, fmt.Errorf("read the server's answer: %w", err)
		}
		all = append(all, page.DeadLetters...)
		if page.NextPageToken == "" || page.NextPageToken == q.Get("page_token") {
			return all, nil
		}
		q.Set("page_token", page.NextPageToken)
	}
}

func runConnectorsDeadLetters(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := verbFlags("connectors deadletters <connector-id>",
		"List a data connector's dead letters: its events that expired, 12 hours old, before the endpoint acknowledged them, oldest expiry first, with their last error. They are kept 7 days (dcon serve --dead-letter-retention).",
		"  dcon connectors deadletters c16pegipidie7lltrefg --project office\n", stderr)
	o := addClientFlags(fs, true)
	c, id, err := parseClientID(fs, o, args, "the data connector id")
	if err != nil {
		return err
	}
	items, err := listDeadLetters(ctx, c, connectorPath(o.project, id)+"/deadletters")
	if err != nil {
		return err
	}
	return printList(stdout, o.output, "deadLetters", items, deadLetterColumns(), deadLetterRow)
}

// replayChunk is how many event ids one replay request of the CLI names:
// small enough for the progress bar to move.
const replayChunk = 100

func runConnectorsReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := verbFlags("connectors replay <connector-id> (--event ID ... | --since TIME | --all)",
		"Deliver dead letters again, with their original event ids: the named events, those that expired since a time, or all of them. The connector must be ACTIVE.",
		"  dcon connectors replay c16pegipidie7lltrefg --project office --event c82gg9catj3vmh4248og\n"+
			"  dcon connectors replay c16pegipidie7lltrefg --project office --since 2h\n"+
			"  dcon connectors replay c16pegipidie7lltrefg --project office --all\n", stderr)
	o := addClientFlags(fs, true)
	var events listFlag
	fs.Var(&events, "event", "the event `id` of a dead letter to replay (repeatable, or comma-separated)")
	since := fs.String("since", "", "replay the dead letters that expired at or after this `time`: RFC 3339 (2022-02-10T12:00:00Z), or a duration ago (2h)")
	all := fs.Bool("all", false, "replay every dead letter")
	c, id, err := parseClientID(fs, o, args, "the data connector id")
	if err != nil {
		return err
	}
	given := 0
	for _, set := range []bool{len(events) > 0, *since != "", *all} {
		if set {
			given++
		}
	}
	if given != 1 {
		return usagef("give exactly one of --event, --since and --all")
	}
	var from time.Time
	if *since != "" {
		if from, err = parseSince(*since, time.Now()); err != nil {
			return err
		}
	}
	path := connectorPath(o.project, id)
	ids := []string(events)
	if len(ids) == 0 {
		// Which dead letters: listed first, so that the bar knows the total.
		if ids, err = deadLetterIDs(ctx, c, path+"/deadletters", from); err != nil {
			return err
		}
	}
	bar := newProgressBar(stderr, "replaying", len(ids))
	replayed := 0
	for start := 0; start < len(ids); start += replayChunk {
		chunk := ids[start:min(start+replayChunk, len(ids))]
		raw, err := c.post(ctx, path+"/deadletters:replay", map[string]any{"eventIds": chunk})
		if err != nil {
			bar.done()
			if replayed > 0 {
				return fmt.Errorf("%w (%d replayed before)", err, replayed)
			}
			return err
		}
		var res struct {
			Replayed int `json:"replayed"`
		}
		if err := json.Unmarshal(raw, &res); err != nil {
			return fmt.Errorf("read the server's answer: %w", err)
		}
		replayed += res.Replayed
		bar.set(start + len(chunk))
	}
	bar.done()
	if o.output == "json" {
		return printJSON(stdout, fmt.Appendf(nil, `{"replayed":%d}`, replayed))
	}
	skipped := ""
	if n := len(ids) - replayed; n > 0 {
		skipped = fmt.Sprintf(" (%d were not dead letters any more)", n)
	}
	noun := "dead letters"
	if replayed == 1 {
		noun = "dead letter"
	}
	_, err = fmt.Fprintf(stdout, "replayed %d %s of data connector %s%s\n", replayed, noun, id, skipped)
	return err
}

// parseSince reads --since: an RFC 3339 time, or a duration before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, usagef("--since %q: give an RFC 3339 time (2022-02-10T12:00:00Z) or a duration ago (2h)", s)
	}
	return t, nil
}

// deadLetterIDs lists the event ids of a connector's dead letters that expired
// at or after from (all of them for the zero time).
func deadLetterIDs(ctx context.Context, c *cliClient, path string, from time.Time) ([]string, error) {
	items, err := listDeadLetters(ctx, c, path)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, raw := range items {
		var dl cliDeadLetter
		if err := json.Unmarshal(raw, &dl); err != nil {
			return nil, fmt.Errorf("read the server's answer: %w", err)
		}
		if !from.IsZero() {
			expired, err := time.Parse(time.RFC3339Nano, dl.ExpireTime)
			if err != nil || expired.Before(from) {
				continue
			}
		}
		ids = append(ids, dl.EventID)
	}
	return ids, nil
}

// progressBar draws "label [#####.....]  50%  n/total" in place on a
// terminal, and nothing elsewhere.
type progressBar struct {
	w     io.Writer // nil: not a terminal
	label string
	total int
}

func newProgressBar(w io.Writer, label string, total int) *progressBar {
	f, ok := w.(*os.File)
	if !ok || !isTerminal(f) || total == 0 {
		w = nil
	}
	b := &progressBar{w: w, label: label, total: total}
	b.set(0)
	return b
}

func (b *progressBar) set(n int) {
	if b.w == nil {
		return
	}
	const width = 30
	f := min(max(float64(n)/float64(b.total), 0), 1)
	filled := int(f * width)
	fmt.Fprintf(b.w, "\r\033[K%s [%s%s] %3.0f%%  %d/%d", b.label,
		strings.Repeat("#", filled), strings.Repeat(".", width-filled), f*100, n, b.total)
}

func (b *progressBar) done() {
	if b.w != nil {
		fmt.Fprintln(b.w)
	}
}
