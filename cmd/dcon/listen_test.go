package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"dcon/internal/signature"
)

// syncBuffer is a bytes.Buffer safe for the handler's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestListenChecksSignatures(t *testing.T) {
	t.Parallel()
	var out syncBuffer
	srv := httptest.NewServer(receiver(&out, "s3cret", false))
	defer srv.Close()
	body := []byte(`{"event":{"eventId":"c82gg9catj3vmh4248og","targetName":"projects/p/devices/d","eventType":"touch","data":{"touch":{}},"timestamp":"2022-02-10T12:42:13.313949Z"},"labels":{"name":"x"},"metadata":{}}`)
	post := func(token string) int {
		req, _ := http.NewRequest("POST", srv.URL, bytes.NewReader(body))
		if token != "" {
			req.Header.Set("X-Dt-Signature", token)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	good := string(signature.AppendDT(nil, []byte("s3cret"), body, time.Now(), "c82gg99hga35jc2afkeg"))
	bad := string(signature.AppendDT(nil, []byte("other"), body, time.Now(), "c82gg99hga35jc2afkeg"))
	tests := []struct {
		name, token string
		status      int
		prints      string
	}{
		{"good signature", good, http.StatusOK, "touch          c82gg9catj3vmh4248og projects/p/devices/d labels={\"name\":\"x\"}"},
		{"wrong secret", bad, http.StatusUnauthorized, "REFUSED"},
		{"no signature", "", http.StatusUnauthorized, "REFUSED"},
	}
	for _, tt := range tests {
		if got := post(tt.token); got != tt.status {
			t.Errorf("%s: status %d, want %d", tt.name, got, tt.status)
		}
		if !strings.Contains(out.String(), tt.prints) {
			t.Errorf("%s: output %q lacks %q", tt.name, out.String(), tt.prints)
		}
	}
	if strings.Count(out.String(), "signature ok") != 1 {
		t.Errorf("output: %q", out.String())
	}
}
