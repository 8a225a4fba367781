package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"dcon/internal/signature"
)

// maxReceivedBody bounds what `dcon listen` reads of one request.
const maxReceivedBody = 1 << 20

func runListen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var addr, secret string
	var raw bool
	fs := newFlagSet("listen", "Run a receiver for a data connector: print every event it gets and check its X-Dt-Signature.", stderr)
	fs.StringVar(&addr, "addr", "127.0.0.1:9000", "`host:port` to listen on")
	fs.StringVar(&secret, "secret", "", "the connector's signature secret; requests with a bad or missing signature are refused with 401")
	fs.BoolVar(&raw, "raw", false, "print each body as received instead of a summary line")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	fmt.Fprintf(stdout, "dcon listen: receiving on http://%s/\n", ln.Addr())
	srv := &http.Server{Handler: receiver(stdout, secret, raw), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// receiver is the handler of `dcon listen`.
func receiver(out io.Writer, secret string, raw bool) http.Handler {
	var mu sync.Mutex // one line at a time
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxReceivedBody))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		verdict := "unsigned"
		if secret != "" {
			if _, err := signature.VerifyDT(r.Header.Get("X-Dt-Signature"), body, [][]byte{[]byte(secret)}, time.Now(), time.Minute); err != nil {
				mu.Lock()
				fmt.Fprintf(out, "REFUSED %s: bad signature: %v\n", time.Now().UTC().Format(time.RFC3339), err)
				mu.Unlock()
				http.Error(w, "bad signature", http.StatusUnauthorized)
				return
			}
			verdict = "signature ok"
		}
		mu.Lock()
		defer mu.Unlock()
		if raw {
			fmt.Fprintf(out, "%s\n", body)
			return
		}
		var m struct {
			Event struct {
				EventID    string          `json:"eventId"`
				TargetName string          `json:"targetName"`
				EventType  string          `json:"eventType"`
				Data       json.RawMessage `json:"data"`
			} `json:"event"`
			Labels map[string]string `json:"labels"`
		}
		if err := json.Unmarshal(body, &m); err != nil {
			fmt.Fprintf(out, "received %d bytes that are not an event (%s): %v\n", len(body), verdict, err)
			return
		}
		labels, _ := json.Marshal(m.Labels)
		fmt.Fprintf(out, "%s %-14s %s %s labels=%s data=%s (%s)\n", time.Now().UTC().Format("15:04:05.000"),
			m.Event.EventType, m.Event.EventID, m.Event.TargetName, labels, m.Event.Data, verdict)
	})
}
