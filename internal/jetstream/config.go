package jetstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config says where the JetStream queue lives and how it is shaped. The zero
// value of every field but URLs is a working default.
type Config struct {
	// URLs are the NATS servers to connect to, e.g. "nats://10.0.0.1:4222";
	// the client learns the rest of the cluster from them. Required.
	URLs []string

	// Name is the connection's name in the servers' monitoring. Default "dcon".
	Name string

	// CredentialsFile is a NATS user credentials file (JWT and NKEY seed).
	CredentialsFile string
	// NKeySeedFile is a file holding an NKEY user seed.
	NKeySeedFile string
	// User and Password authenticate with a user name and password; Token
	// with a token. At most one of CredentialsFile, NKeySeedFile, User and
	// Token is set.
	User, Password string
	Token          string
	// TLS, when set, is used for the connection (client certificates, roots).
	TLS *tls.Config

	// Prefix names this queue's streams (<Prefix>_QUEUE, <Prefix>_DEAD), their
	// subjects (<Prefix>.q.…, <Prefix>.dl.…) and consumers, so that several
	// dcon installations may share a NATS account. Letters, digits, '-' and
	// '_'. Default "DCON".
	Prefix string

	// Replicas is how many servers keep each stream: 1 on a single server, 3
	// in a cluster (an acknowledged enqueue is then on a quorum of 2).
	// Default 1.
	Replicas int

	// Partitions is how many partitions the connectors are hashed over; each
	// has one durable pull consumer. It is fixed when the streams are first
	// made: opening an existing queue with another count is refused. Default
	// 32.
	Partitions int

	// AckWait is how long a delivery fetched by a dcon node stays that
	// node's after it stops renewing it (it renews every AckWait/3 while it
	// runs): after a node dies, the others take over its deliveries this
	// long after. Default 1 minute.
	AckWait time.Duration

	// MaxAckPending bounds, per partition, the deliveries held by all nodes
	// together: fresh copies in their first attempt and retries due within
	// ParkAfter. Default 4096 (32 partitions hold 131,072, over six times
	// the engine's 20,000 attempts in flight per node).
	MaxAckPending int

	// ParkAfter: a fetched delivery due further than this after the latest
	// Claim's now is handed back to the server with a delayed negative
	// acknowledgement until about its due time, so that long backoffs do
	// not hold MaxAckPending slots. Default 2 minutes.
	ParkAfter time.Duration

	// MaxAge is the queue stream's age limit, a backstop behind the engine,
	// which expires deliveries MaxEventAge after their event. It counts
	// from a delivery's latest write. Default 13 hours.
	MaxAge time.Duration

	// DeadLetterMaxAge is how long dead letters are kept; 0 keeps them until
	// the stream's other limits remove them. Default 0.
	DeadLetterMaxAge time.Duration

	// Logger receives what the queue cannot return as an error (a failed
	// renewal, say). Default: discard.
	Logger *slog.Logger
}

// Defaults.
const (
	DefaultPrefix        = "DCON"
	DefaultPartitions    = 32
	DefaultAckWait       = time.Minute
	DefaultMaxAckPending = 4096
	DefaultParkAfter     = 2 * time.Minute
	DefaultMaxAge        = 13 * time.Hour
)

var prefixPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// withDefaults returns c with its zero fields set to their defaults, or an
// error if c is invalid.
func (c Config) withDefaults() (Config, error) {
	if len(c.URLs) == 0 {
		return c, errors.New("jetstream: no NATS server URL")
	}
	if c.Name == "" {
		c.Name = "dcon"
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if !prefixPattern.MatchString(c.Prefix) {
		return c, fmt.Errorf("jetstream: prefix %q: only letters, digits, '-' and '_'", c.Prefix)
	}
	auth := 0
	for _, set := range []bool{c.CredentialsFile != "", c.NKeySeedFile != "", c.User != "", c.Token != ""} {
		if set {
			auth++
		}
	}
	if auth > 1 {
		return c, errors.New("jetstream: more than one of credentials file, NKEY seed, user and token")
	}
	for _, f := range []struct {
		name string
		v    *int
		def  int
	}{{"replicas", &c.Replicas, 1}, {"partitions", &c.Partitions, DefaultPartitions}, {"max ack pending", &c.MaxAckPending, DefaultMaxAckPending}} {
		if *f.v == 0 {
			*f.v = f.def
		}
		if *f.v < 0 {
			return c, fmt.Errorf("jetstream: %s %d is negative", f.name, *f.v)
		}
	}
	if c.Replicas > 5 {
		return c, fmt.Errorf("jetstream: replicas %d: at most 5", c.Replicas)
	}
	for _, f := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{{"ack wait", &c.AckWait, DefaultAckWait}, {"park after", &c.ParkAfter, DefaultParkAfter}, {"max age", &c.MaxAge, DefaultMaxAge}, {"dead letter max age", &c.DeadLetterMaxAge, 0}} {
		if *f.v == 0 {
			*f.v = f.def
		}
		if *f.v < 0 {
			return c, fmt.Errorf("jetstream: %s %v is negative", f.name, *f.v)
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Connection health: a server that dies without closing its connections
// (a machine lost, a network cut) is noticed after about pingInterval ×
// maxPingsOut, then the client reconnects to another server of the cluster,
// trying one that failed again after reconnectWait.
const (
	pingInterval  = 5 * time.Second
	maxPingsOut   = 3
	reconnectWait = 500 * time.Millisecond
)

// natsOptions returns the connection options c asks for: besides the
// credentials, reconnect forever (to any server of the cluster, learned
// from the URLs), and notice a silent server within about 15 s.
func (c *Config) natsOptions() ([]nats.Option, error) {
	opts := []nats.Option{nats.Name(c.Name), nats.MaxReconnects(-1), nats.ReconnectWait(reconnectWait),
		nats.PingInterval(pingInterval), nats.MaxPingsOutstanding(maxPingsOut)}
	switch {
	case c.CredentialsFile != "":
		opts = append(opts, nats.UserCredentials(c.CredentialsFile))
	case c.NKeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(c.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("jetstream: NKEY seed %s: %w", c.NKeySeedFile, err)
		}
		opts = append(opts, o)
	case c.User != "":
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	case c.Token != "":
		opts = append(opts, nats.Token(c.Token))
	}
	if c.TLS != nil {
		opts = append(opts, nats.Secure(c.TLS))
	}
	return opts, nil
}

// setUpRetryFor bounds how long opening waits for a cluster that cannot
// place streams yet: one still forming, or a server restarting.
const setUpRetryFor = 30 * time.Second

// jsErrNoPlacement is JetStream's "no suitable peers for placement": the
// meta leader does not know enough servers (yet) for the replicas asked.
const jsErrNoPlacement jetstream.ErrorCode = 10005

// retrySetUp calls try until it succeeds, fails in a way that waiting will
// not mend, setUpRetryFor passes, or ctx ends, so that a node started with
// its NATS cluster waits for the cluster rather than exits.
func retrySetUp[T any](ctx context.Context, try func() (T, error)) (T, error) {
	deadline := time.Now().Add(setUpRetryFor)
	wait := 100 * time.Millisecond
	for {
		v, err := try()
		var apiErr *jetstream.APIError
		again := transient(err) || errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrNoPlacement
		if err == nil || !again || time.Now().Add(wait).After(deadline) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}
