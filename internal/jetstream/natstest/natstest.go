// Package natstest runs real NATS servers with JetStream inside a test
// process: one server ([StartServer]) or a cluster on loopback
// ([StartCluster]). Each listens on 127.0.0.1 with random ports, keeps its
// JetStream files in a t.TempDir(), and is shut down when the test ends.
//
//	s := natstest.StartServer(t, nil)
//	q, err := jetstream.Open(ctx, jetstream.Config{URLs: []string{s.ClientURL()}})
package natstest

import (
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// readyTimeout bounds how long a server may take to accept connections.
const readyTimeout = 10 * time.Second

// StartServer starts one NATS server with JetStream enabled and returns it;
// s.ClientURL() is where clients connect. opts may be nil; the fields it
// leaves zero get test defaults: host 127.0.0.1, a random port, file storage
// in a fresh t.TempDir(), no logging, no signal handlers. A Port of 0 means a
// random port too.
func StartServer(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	s := start(t, opts)
	waitReady(t, s)
	return s
}

// start starts a server without waiting for it.
func start(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	o := server.Options{}
	if opts != nil {
		o = *opts
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Port == 0 {
		o.Port = -1
	}
	if o.StoreDir == "" {
		o.StoreDir = t.TempDir()
	}
	o.JetStream = true
	o.NoLog = true
	o.NoSigs = true
	s, err := server.NewServer(&o)
	if err != nil {
		t.Fatalf("natstest: new server: %v", err)
	}
	go s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

func waitReady(t testing.TB, s *server.Server) {
	t.Helper()
	if !s.ReadyForConnections(readyTimeout) {
		t.Fatalf("natstest: server %s not ready after %v", s.Name(), readyTimeout)
	}
}

// StartCluster starts n JetStream servers clustered over routes on loopback
// and waits until the cluster has a JetStream meta leader that can place
// streams on every server, so that streams with up to n replicas can be
// made at once. The servers are named s1…sn;
// each has its own store directory.
func StartCluster(t testing.TB, n int) []*server.Server {
	t.Helper()
	if n < 1 {
		t.Fatalf("natstest: cluster of %d servers", n)
	}
	ports := make([]int, n)
	routes := make([]*url.URL, n)
	for i := range ports {
		ports[i] = freePort(t)
		routes[i] = &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", ports[i])}
	}
	servers := make([]*server.Server, n)
	for i := range servers {
		servers[i] = start(t, &server.Options{
			ServerName: fmt.Sprintf("s%d", i+1),
			Cluster:    server.ClusterOpts{Name: "dcon-test", Host: "127.0.0.1", Port: ports[i]},
			Routes:     routes,
		})
	}
	for _, s := range servers {
		waitReady(t, s)
	}
	deadline := time.Now().Add(readyTimeout)
	for !clusterReady(servers) {
		if time.Now().After(deadline) {
			t.Fatalf("natstest: cluster of %d formed no JetStream leader within %v", n, readyTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return servers
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("natstest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// clusterReady reports whether every server sees all the others as routes
// and is current with the JetStream meta group, and the meta leader counts
// every server as a peer that can take a stream (online, with JetStream, its
// statistics received): before that, making an R3 stream fails with "no
// suitable peers for placement".
func clusterReady(servers []*server.Server) bool {
	var leader *server.Server
	for _, s := range servers {
		if s.NumRoutes() < len(servers)-1 || !s.JetStreamIsCurrent() {
			return false
		}
		if s.JetStreamIsLeader() {
			leader = s
		}
	}
	return leader != nil && len(leader.JetStreamClusterPeers()) == len(servers)
}
