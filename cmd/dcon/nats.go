package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"dcon"
	"dcon/internal/auth"
	"dcon/internal/httpapi"
	"dcon/internal/ingest"
	"dcon/internal/jetstream"
	"dcon/internal/metrics"
	"dcon/internal/pebble"
	"dcon/internal/stats"
)

// nodeStore is everything a node keeps its state in: *pebble.DB (the
// default), or the JetStream queue and KV buckets shared by a fleet of nodes
// (natsStore, with --nats).
type nodeStore interface {
	dcon.Queue
	dcon.DeadLetterQueue
	dcon.QueueInspector
	dcon.ConnectorStore
	dcon.DeviceStore
	dcon.ProjectStore
	dcon.AccessStore
	dcon.LatestEventStore
	stats.Store
	Ping(ctx context.Context) error
	CreateMissingProjects(ctx context.Context, now time.Time) ([]string, error)
	Close() error
}

var (
	_ nodeStore = (*pebble.DB)(nil)
	_ nodeStore = (*natsStore)(nil)
)

// natsConfig is what `dcon serve --nats` is told.
type natsConfig struct {
	URLs       string        // --nats: comma-separated server URLs; "" means the embedded Pebble store
	Creds      string        // --nats-creds: a user credentials file
	NKey       string        // --nats-nkey: a file holding an NKEY user seed
	TLSCA      string        // --nats-tls-ca: PEM CA certificates for the servers' TLS
	Replicas   int           // --nats-replicas: copies of every stream and bucket
	Partitions int           // --nats-partitions: the queue's partitions (fixed at first start)
	Prefix     string        // --nats-prefix: names of streams, buckets and subjects
	Node       string        // --nats-node: this node's name for its statistics; default the host name
	AckWait    time.Duration // how long a dead node's deliveries wait before others take them; 0: 1 min (tests shorten it)
}

func registerNATSFlags(fs *flag.FlagSet, c *natsConfig) {
	fs.StringVar(&c.URLs, "nats", os.Getenv("DCON_NATS"), "NATS server `URLs`, comma-separated: keep the queue and the configuration in JetStream, shared by every node, instead of the embedded store (env DCON_NATS)")
	fs.StringVar(&c.Creds, "nats-creds", "", "NATS user credentials `file` (JWT and NKEY seed)")
	fs.StringVar(&c.NKey, "nats-nkey", "", "`file` holding a NATS NKEY user seed")
	fs.StringVar(&c.TLSCA, "nats-tls-ca", "", "PEM `file` of CA certificates that sign the NATS servers' certificates")
	fs.IntVar(&c.Replicas, "nats-replicas", 1, "how many NATS servers keep each stream and bucket: 1 on a single server, 3 in a cluster")
	fs.IntVar(&c.Partitions, "nats-partitions", jetstream.DefaultPartitions, "partitions of the queue (one consumer each); fixed when the queue is first made")
	fs.StringVar(&c.Prefix, "nats-prefix", jetstream.DefaultPrefix, "`prefix` of the streams, buckets and subjects, so that several installations can share a NATS account")
	fs.StringVar(&c.Node, "nats-node", "", "this node's `name` in the shared statistics (default: the host name)")
}

// config returns the JetStream configuration the flags ask for.
func (c natsConfig) config(log *slog.Logger) (jetstream.Config, error) {
	jc := jetstream.Config{
		URLs: strings.Split(c.URLs, ","), CredentialsFile: c.Creds, NKeySeedFile: c.NKey,
		Prefix: c.Prefix, Replicas: c.Replicas, Partitions: c.Partitions, AckWait: c.AckWait,
		Logger: log.With("component", "jetstream"),
	}
	if c.TLSCA != "" {
		pem, err := os.ReadFile(c.TLSCA)
		if err != nil {
			return jc, fmt.Errorf("--nats-tls-ca: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return jc, fmt.Errorf("--nats-tls-ca %s: no PEM certificate", c.TLSCA)
		}
		jc.TLS = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	return jc, nil
}

// openStore opens the node's store: Pebble in the data directory, or with
// --nats the JetStream queue and KV buckets. With --nats, the data directory
// only receives copies of the secrets every node shares (see shareSecrets).
func openStore(ctx context.Context, cfg serveConfig, m *metrics.Metrics, log *slog.Logger) (nodeStore, error) {
	if cfg.NATS.URLs == "" {
		db, err := pebble.Open(cfg.Data, pebble.Options{Logger: log, FS: cfg.FS, OnSyncedCommit: m.ObserveCommit})
		if err != nil {
			return nil, fmt.Errorf("open the store in %s: %w", cfg.Data, err)
		}
		return db, nil
	}
	jc, err := cfg.NATS.config(log)
	if err != nil {
		return nil, err
	}
	q, err := jetstream.Open(ctx, jc)
	if err != nil {
		return nil, fmt.Errorf("open the JetStream queue: %w", err)
	}
	st, err := jetstream.OpenStore(ctx, jetstream.StoreConfig{Config: jc, Node: cfg.NATS.Node})
	if err != nil {
		_ = q.Close()
		return nil, fmt.Errorf("open the JetStream buckets: %w", err)
	}
	s := &natsStore{Queue: q, Store: st}
	if err := shareSecrets(ctx, st, cfg.Data, cfg.KeyOverlap, log); err != nil {
		_ = s.Close()
		return nil, err
	}
	log.Info("state in NATS JetStream", "servers", cfg.NATS.URLs, "replicas", cfg.NATS.Replicas, "prefix", cfg.NATS.Prefix)
	return s, nil
}

// shareSecrets makes the data directory's signing keys and server key those
// of the fleet, kept in the secrets bucket: a node takes the bucket's copy;
// the first node of a fleet stores its own (made now if the directory has
// none). Two first nodes racing agree: the second's store fails, and it takes
// the first's.
func shareSecrets(ctx context.Context, st *jetstream.Store, dir string, overlap time.Duration, log *slog.Logger) error {
	files := []struct{ secret, file string }{{"signing-keys", keysFile}, {"server-key", auth.ServerKeyFile}}
	pull := func() (missing bool, err error) {
		for _, f := range files {
			val, err := st.Secret(ctx, f.secret)
			if dcon.ErrorCode(err) == dcon.ENOTFOUND {
				missing = true
				continue
			}
			if err != nil {
				return false, err
			}
			if err := os.WriteFile(filepath.Join(dir, f.file), val, 0o600); err != nil {
				return false, fmt.Errorf("secret %s: %w", f.secret, err)
			}
		}
		return missing, nil
	}
	missing, err := pull()
	if err != nil || !missing {
		return err
	}
	// The first node: make what the directory lacks, and offer it.
	if _, err := loadKeySet(dir, overlap, time.Now(), log); err != nil {
		return err
	}
	if _, err := auth.LoadServerKey(dir); err != nil {
		return err
	}
	for _, f := range files {
		val, err := os.ReadFile(filepath.Join(dir, f.file))
		if err != nil {
			return fmt.Errorf("secret %s: %w", f.secret, err)
		}
		if err := st.CreateSecret(ctx, f.secret, val); err != nil && dcon.ErrorCode(err) != dcon.ECONFLICT {
			return err
		}
	}
	_, err = pull() // whoever came first wins
	return err
}

// watchConnectors makes connector changes made by other nodes reach the
// router, and signing-key rotations made through any node the node's keys
// (with a shared store; nothing to do with Pebble).
func (n *node) watchConnectors(ctx context.Context, router *ingest.Router, log *slog.Logger) {
	s, ok := n.db.(*natsStore)
	if !ok {
		return
	}
	ctx = context.WithoutCancel(ctx)
	s.OnConnectorChange(func(projectID, id string) {
		if err := router.Reload(ctx, projectID, id); err != nil {
			log.Warn("apply a connector change of another node", "connector", id, "err", err)
		}
	})
	if err := n.keys.share(ctx, s.Store, log.With("component", "keys")); err != nil {
		log.Error("follow the fleet's signing keys: rotations made on other nodes reach this node only when it restarts", "err", err)
	}
}

// connectorMetrics is what `:metrics` and the dashboard answer from: the
// node's tracker, or with --nats the fleet's figures (every node's attempts).
func (n *node) connectorMetrics(log *slog.Logger) httpapi.MetricsReader {
	s, ok := n.db.(*natsStore)
	if !ok {
		return n.stats
	}
	f, err := stats.NewFleet(n.stats, s.Store, log.With("component", "stats"))
	if err != nil { // only without a tracker
		return n.stats
	}
	return f
}

// natsStore is a node's state in JetStream: the queue and the KV buckets.
// Queue stats ask the server for the depth (the oldest event's time is not
// known on JetStream).
type natsStore struct {
	*jetstream.Queue
	*jetstream.Store
}

// Close closes the queue and the buckets.
func (s *natsStore) Close() error { return errors.Join(s.Queue.Close(), s.Store.Close()) }

// CreateMissingProjects has nothing to do: stores written before projects
// existed were Pebble stores.
func (s *natsStore) CreateMissingProjects(context.Context, time.Time) ([]string, error) {
	return nil, nil
}

// QueueStats returns the connector's depth (a server request; the oldest
// event time is not known).
func (s *natsStore) QueueStats(ctx context.Context, connectorID string) (dcon.QueueStats, error) {
	n, err := s.Depth(ctx, connectorID)
	return dcon.QueueStats{Depth: n}, err
}
