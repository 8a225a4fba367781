package receiver_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"dcon/receiver"
)

func TestMiddleware(t *testing.T) {
	t.Parallel()
	now := time.Unix(vectorIat+10, 0)
	v := mustVerifier(t, receiver.Config{Secrets: []string{vectorSecret}, Now: func() time.Time { return now }})
	type got struct {
		ev  *receiver.Event
		raw string
	}
	calls := make(chan got, 1)
	h := receiver.Middleware(v, 4096, receiver.HandlerFunc(func(w http.ResponseWriter, r *http.Request, ev *receiver.Event) {
		raw, _ := io.ReadAll(r.Body)
		calls <- got{ev, string(raw)}
		w.WriteHeader(http.StatusNoContent)
	}))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	tests := []struct {
		name       string
		method     string
		body       string
		sig        string
		wantStatus int
		wantText   string
	}{
		{name: "signed event", method: "POST", body: vectorBody, sig: vectorToken, wantStatus: http.StatusNoContent},
		{name: "GET", method: "GET", wantStatus: http.StatusMethodNotAllowed},
		{name: "no signature", method: "POST", body: vectorBody, wantStatus: http.StatusUnauthorized, wantText: "X-Dt-Signature: signature missing"},
		{name: "tampered body", method: "POST", body: strings.Replace(vectorBody, `"name":"touch"`, `"name":"tooch"`, 1), sig: vectorToken, wantStatus: http.StatusUnauthorized, wantText: "body does not match"},
		{name: "over the limit", method: "POST", body: strings.Repeat(" ", 4097), sig: vectorToken, wantStatus: http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.sig != "" {
				req.Header.Set(receiver.DTHeader, tt.sig)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			text, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, text, tt.wantStatus)
			}
			if !strings.Contains(string(text), tt.wantText) {
				t.Errorf("answer %q does not say %q", text, tt.wantText)
			}
			if tt.wantStatus != http.StatusNoContent {
				select {
				case c := <-calls:
					t.Fatalf("handler called with %+v", c.ev)
				default:
				}
				return
			}
			c := <-calls
			if c.raw != vectorBody {
				t.Errorf("r.Body holds %q, want the raw body", c.raw)
			}
			touch, ok := c.ev.Touch()
			if !ok || c.ev.EventID != "c82gg9catj3vmh4248og" || touch.UpdateTime.IsZero() {
				t.Errorf("event %+v", c.ev)
			}
		})
	}
}

func TestMiddlewareBadEvent(t *testing.T) {
	t.Parallel()
	v := mustVerifier(t, receiver.Config{StandardSecrets: []string{swSecret}, Now: func() time.Time { return time.Unix(swTimestamp, 0) }})
	h := receiver.Middleware(v, 0, receiver.HandlerFunc(func(http.ResponseWriter, *http.Request, *receiver.Event) {
		t.Error("handler called")
	}))
	r := request(swBody, map[string]string{"webhook-id": swID, "webhook-timestamp": "1614265330", "webhook-signature": swSig})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "no event member") {
		t.Fatalf("status %d %q, want 400 saying no event member", w.Code, w.Body)
	}
}

func TestMiddlewareKeysUnavailable(t *testing.T) {
	t.Parallel()
	c := newClock(time.Unix(vectorIat, 0))
	srv := newJWKSServer(t, c)
	srv.failing.Store(true)
	v := mustVerifier(t, receiver.Config{JWKSURL: srv.jwksURL(), HTTPClient: srv.Client(), Now: c.Now})
	h := receiver.Middleware(v, 0, receiver.HandlerFunc(func(http.ResponseWriter, *http.Request, *receiver.Event) {
		t.Error("handler called")
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, request(vectorBody, map[string]string{receiver.ES256Header: srv.sign(t, vectorBody, "", "")}))
	if w.Code != http.StatusServiceUnavailable || strings.Contains(w.Body.String(), "127.0.0.1") {
		t.Fatalf("status %d %q, want 503 without the cause", w.Code, w.Body)
	}
}

func TestMiddlewarePanicsWithoutVerifier(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	receiver.Middleware(nil, 0, receiver.HandlerFunc(func(http.ResponseWriter, *http.Request, *receiver.Event) {}))
}
