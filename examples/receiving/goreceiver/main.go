// Command goreceiver is a data connector endpoint in Go, built on the
// dcon/receiver package: it verifies every signature it is configured for
// (401 when one fails, 503 when dcon's keys cannot be fetched), drops
// duplicate deliveries by eventId, and answers 200 at once, leaving the work
// to a queue. See docs/receiving.md.
//
//	go run ./examples/receiving/goreceiver --port 9000 --secret "$NEW" --secret "$OLD" \
//	    --issuer https://dcon.example.com --standard-secret "$WHSEC"
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"time"

	"dcon/receiver"
)

// repeated is a flag that may be given several times.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

func main() {
	var cfg receiver.Config
	var secrets, standard repeated
	port := flag.Int("port", 9000, "port to listen on, on 127.0.0.1")
	flag.Var(&secrets, "secret", "X-Dt-Signature secret (repeat while rotating)")
	flag.StringVar(&cfg.Issuer, "issuer", "", "dcon's issuer URL: require DT-Asymmetric-Signature")
	flag.Var(&standard, "standard-secret", "Standard Webhooks secret, whsec_…")
	minRefresh := flag.Int("jwks-min-refresh-ms", 30_000, "least time between two fetches of the JWKS")
	flag.Parse()
	cfg.Secrets, cfg.StandardSecrets = secrets, standard
	cfg.JWKSMinRefresh = time.Duration(*minRefresh) * time.Millisecond

	v, err := receiver.NewVerifier(cfg)
	if err != nil {
		log.Fatal(err)
	}
	seen := receiver.NewDedup(0)
	work := make(chan *receiver.Event, 1000)
	go func() { // the slow part, after the 200
		for ev := range work {
			fmt.Println("event", ev.EventID, ev.EventType)
		}
	}()
	handler := receiver.Middleware(v, 0, receiver.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request, ev *receiver.Event) {
			if seen.Seen(ev.EventID) {
				fmt.Println("duplicate", ev.EventID)
				return // acknowledge it again, do nothing
			}
			select {
			case work <- ev:
			default: // the queue is full: let dcon retry later
				seen.Forget(ev.EventID)
				http.Error(w, "busy", http.StatusServiceUnavailable)
			}
		}))

	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on http://%s\n", ln.Addr())
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}
