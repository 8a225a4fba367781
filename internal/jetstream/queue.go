// Package jetstream is a [dcon.Queue] on NATS JetStream, for a fleet of dcon
// nodes that share one queue. It passes the conformance suite in
// internal/queuetest, against a real server run in process (see natstest).
//
// # Layout on the server
//
// One stream, <Prefix>_QUEUE (file storage, Config.Replicas, limits
// retention), holds the queued deliveries, one message per delivery, on the
// subject
//
//	<Prefix>.q.<partition>.<connector>.<event>
//
// where partition = FNV-1a(connector) mod Config.Partitions. The stream keeps
// one message per subject (MaxMsgsPerSubject 1), so a stream message is the
// current version of one delivery, and writing a delivery again — a replacing
// Enqueue, a Retry — atomically replaces it: the server drops the older
// version. Ack and Expire delete the delivery's stored version by its stream
// sequence; Drop purges <Prefix>.q.<partition>.<connector>.>; Depth counts
// the subjects under it.
// A second stream, <Prefix>_DEAD, keeps dead letters on
// <Prefix>.dl.<partition>.<connector>.<event>.
//
// Each partition has one durable pull consumer, <Prefix>_Q_<partition>,
// shared by every node — never one consumer per connector. A message fetched
// by a node is that node's (the server's ack-pending state is the lease
// between nodes) until the node acks it, hands it back, or dies and the
// consumer's AckWait passes; while it runs, the node renews what it holds.
//
// # Time
//
// A delivery's Due is kept in its record and compared with the now that the
// caller passes to Claim — never with the server's clock — so the queue
// follows the engine's injected clock as the contract requires. A node keeps,
// in memory, an index of the deliveries it holds with their Due (and the
// leases Claim gave them); Claim fetches what the consumers have for it, then
// returns the earliest due from that index. Deliveries due further than
// Config.ParkAfter beyond the latest Claim's now are handed back with a
// delayed negative ack (the only place the server's clock matters), so that
// long backoffs hold no consumer slot.
//
// See docs/adr/0005-jetstream-queue.md for the reasons.
package jetstream

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"dcon"
)

// fetchBatch is how many messages one fetch from a partition asks for.
const fetchBatch = 256

// fetchTimeout is how long a fetch waits for the server's next answer
// before Claim fails. A pull request sent to a consumer leader that dies
// is never answered: this is then how long the node's Claims stall.
const fetchTimeout = 5 * time.Second

// publishAckTimeout bounds the wait for one PubAck: a publish that reached
// a stream leader that died before answering is never answered.
const publishAckTimeout = 4 * time.Second

// publishRetryFor is how long Enqueue and Expire keep retrying publishes
// the cluster could not take — a reconnect to another server, a stream
// leader being elected — before they fail with EUNAVAILABLE.
const publishRetryFor = 5 * time.Second

// fetchExpires is how long the server keeps a checking pull request: what
// it costs when a partition has nothing for this node.
const fetchExpires = 25 * time.Millisecond

// sweepEvery is how often each partition is checked even when this node
// expects nothing there (see fetchPartition).
const sweepEvery = time.Second

// maxParallel bounds the server requests one call has outstanding at once.
const maxParallel = 32

// metaPartitions is the stream metadata key that records the partition count.
const metaPartitions = "dcon-partitions"

// Queue is a dcon.Queue on JetStream. It is safe for concurrent use. Open it
// with Open; Close it when done.
type Queue struct {
	cfg       Config
	nc        *nats.Conn
	js        jetstream.JetStream
	queue     jetstream.Stream
	dead      jetstream.Stream
	consumers []jetstream.Consumer

	stop chan struct{} // closed by Close: stops the renewer
	done chan struct{} // closed when the renewer has stopped
	once sync.Once     // Close runs once

	lmu  sync.Mutex
	lost chan struct{} // closed when the connection drops, then replaced

	mu      sync.Mutex
	held    map[key]*entry // deliveries this node enqueued, retried or fetched
	gone    map[key]uint64 // versions at or below this sequence were removed here
	oldGone map[key]uint64 // the previous generation of gone
	lastNow time.Time      // the now of the latest Claim
	swept   []time.Time    // by partition: the latest checking fetch
}

var _ dcon.Queue = (*Queue)(nil)

type key struct{ connectorID, eventID string }

// entry is what a node knows of one delivery.
type entry struct {
	seq    uint64        // the stream sequence of the version below
	d      dcon.Delivery // that version, with Due as this node sees it (a lease)
	msg    *nats.Msg     // the consumer's delivery of seq to this node; nil if none
	leased bool          // d.Due is a lease from Claim, not the stored Due
}

// maxGone bounds each generation of the gone map.
const maxGone = 16384

// Open connects to the servers in cfg, makes or updates the streams and the
// partitions' consumers, and returns the queue.
func Open(ctx context.Context, cfg Config) (*Queue, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	opts, err := cfg.natsOptions()
	if err != nil {
		return nil, err
	}
	q := &Queue{
		cfg:     cfg,
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		lost:    make(chan struct{}),
		held:    make(map[key]*entry),
		gone:    make(map[key]uint64),
		oldGone: make(map[key]uint64),
		swept:   make([]time.Time, cfg.Partitions),
	}
	opts = append(opts, nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
		if !nc.IsClosed() {
			cfg.Logger.Warn("jetstream queue: disconnected from the NATS server; reconnecting", "err", err)
		}
		q.lmu.Lock()
		close(q.lost)
		q.lost = make(chan struct{})
		q.lmu.Unlock()
	}), nats.ReconnectHandler(func(nc *nats.Conn) {
		cfg.Logger.Info("jetstream queue: reconnected", "server", nc.ConnectedUrlRedacted())
	}))
	nc, err := nats.Connect(strings.Join(cfg.URLs, ","), opts...)
	if err != nil {
		return nil, unavailable(err, "connect to %s", strings.Join(cfg.URLs, ","))
	}
	q.nc = nc
	if err := q.setUp(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	go q.renew()
	return q, nil
}

// setUp makes or updates the streams and consumers.
func (q *Queue) setUp(ctx context.Context) error {
	js, err := jetstream.New(q.nc, jetstream.WithPublishAsyncTimeout(publishAckTimeout))
	if err != nil {
		return unavailable(err, "open JetStream")
	}
	q.js = js
	c := q.cfg
	name := c.Prefix + "_QUEUE"
	if s, err := js.Stream(ctx, name); err == nil {
		have := s.CachedInfo().Config.Metadata[metaPartitions]
		if have != strconv.Itoa(c.Partitions) {
			return fmt.Errorf("jetstream: stream %s was made with %s partitions, not %d", name, have, c.Partitions)
		}
	} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return unavailable(err, "look up stream %s", name)
	}
	q.queue, err = retrySetUp(ctx, func() (jetstream.Stream, error) {
		return js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:              name,
			Description:       "dcon deliveries: one message per (connector, event)",
			Subjects:          []string{c.Prefix + ".q.>"},
			Retention:         jetstream.LimitsPolicy,
			MaxMsgsPerSubject: 1,
			MaxAge:            c.MaxAge,
			Storage:           jetstream.FileStorage,
			Replicas:          c.Replicas,
			Duplicates:        time.Second, // no Nats-Msg-Id: rewriting a subject is idempotent
			AllowDirect:       true,
			Metadata:          map[string]string{metaPartitions: strconv.Itoa(c.Partitions)},
		})
	})
	if err != nil {
		return unavailable(err, "make stream %s", name)
	}
	q.dead, err = retrySetUp(ctx, func() (jetstream.Stream, error) {
		return js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:              c.Prefix + "_DEAD",
			Description:       "dcon dead letters: deliveries that expired",
			Subjects:          []string{c.Prefix + ".dl.>"},
			Retention:         jetstream.LimitsPolicy,
			MaxMsgsPerSubject: 1,
			MaxAge:            c.DeadLetterMaxAge,
			Storage:           jetstream.FileStorage,
			Replicas:          c.Replicas,
			Duplicates:        time.Second,
		})
	})
	if err != nil {
		return unavailable(err, "make stream %s_DEAD", c.Prefix)
	}
	q.consumers = make([]jetstream.Consumer, c.Partitions)
	for p := range c.Partitions {
		durable := q.durable(p)
		q.consumers[p], err = retrySetUp(ctx, func() (jetstream.Consumer, error) {
			return q.queue.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
				Durable:       durable,
				FilterSubject: fmt.Sprintf("%s.q.%d.>", c.Prefix, p),
				AckPolicy:     jetstream.AckExplicitPolicy,
				AckWait:       c.AckWait,
				MaxAckPending: c.MaxAckPending,
				MaxDeliver:    -1,
				DeliverPolicy: jetstream.DeliverAllPolicy,
			})
		})
		if err != nil {
			return unavailable(err, "make consumer %s", durable)
		}
	}
	return nil
}

// Close hands the deliveries this node holds back to the server — each due
// again when its Due (or lease) ends — and closes the connection.
func (q *Queue) Close() error {
	q.once.Do(func() {
		close(q.stop)
		<-q.done
		q.mu.Lock()
		now := q.lastNow
		for _, e := range q.held {
			if e.msg != nil {
				_ = e.msg.NakWithDelay(max(e.d.Due.Sub(now), 0))
			}
		}
		q.held = nil
		q.mu.Unlock()
		if err := q.nc.Flush(); err != nil {
			q.cfg.Logger.Warn("jetstream queue: flush on close", "err", err)
		}
		q.nc.Close()
	})
	return nil
}

// crash closes the connection as a crash would: without handing anything
// back. For tests.
func (q *Queue) crash() {
	q.once.Do(func() {
		close(q.stop)
		<-q.done
		q.nc.Close()
	})
}

// renew tells the server, every AckWait/3, that this node still holds what it
// fetched, until Close.
func (q *Queue) renew() {
	defer close(q.done)
	t := time.NewTicker(q.cfg.AckWait / 3)
	defer t.Stop()
	for {
		select {
		case <-q.stop:
			return
		case <-t.C:
		}
		q.mu.Lock()
		msgs := make([]*nats.Msg, 0, len(q.held))
		for _, e := range q.held {
			if e.msg != nil {
				msgs = append(msgs, e.msg)
			}
		}
		q.mu.Unlock()
		for _, m := range msgs {
			err := m.InProgress()
			if errors.Is(err, nats.ErrMsgAlreadyAckd) {
				continue // acked or handed back since the list was made
			}
			if err != nil { // the connection is down: nothing more can be renewed now
				q.cfg.Logger.Warn("jetstream queue: renew", "subject", m.Subject, "err", err)
				break
			}
		}
	}
}

// unavailable wraps a server failure as the error the API shows.
func unavailable(err error, format string, args ...any) error {
	return dcon.WrapError(dcon.EUNAVAILABLE, fmt.Errorf("jetstream: "+format+": %w", append(args, err)...), "the queue is unavailable")
}

// errConnectionLost ends a request that was sent on a connection that has
// dropped since: its answer cannot come.
var errConnectionLost = errors.New("the connection to the NATS server was lost")

// lostSignal returns a channel closed when the current connection drops.
func (q *Queue) lostSignal() <-chan struct{} {
	q.lmu.Lock()
	defer q.lmu.Unlock()
	return q.lost
}

// untilLost returns ctx, also cancelled (cause errConnectionLost) if the
// connection drops: a request in flight then is not answered, and a caller
// waiting for its answer can retry or fail at once instead of timing out.
func (q *Queue) untilLost(ctx context.Context) (context.Context, context.CancelFunc) {
	lost := q.lostSignal()
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-lost:
			cancel(errConnectionLost)
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(context.Canceled) }
}

// transient reports whether a failed publish may succeed if tried again
// soon: the connection is being re-established, the stream has no leader
// for a moment, or an answer was lost with a server.
func transient(err error) bool {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, nats.ErrDisconnected), errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, nats.ErrNoResponders), errors.Is(err, nats.ErrTimeout),
		errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, jetstream.ErrAsyncPublishTimeout),
		errors.Is(err, jetstream.ErrTooManyStalledMsgs), errors.Is(err, errConnectionLost),
		errors.Is(err, context.DeadlineExceeded):
		return true
	case errors.As(err, &apiErr):
		return apiErr.Code >= 500 // e.g. 503: JetStream temporarily unavailable
	}
	return false
}

// publishAll publishes every data[i] on subjects[i], pipelined, and returns
// each one's stream sequence once the server has acknowledged it (stored in
// a quorum of the replicas). What fails transiently — a reconnect, a leader
// election — is published again for up to publishRetryFor; rewriting a
// delivery's subject is idempotent (the stream keeps one message per
// subject).
func (q *Queue) publishAll(ctx context.Context, subjects []string, data [][]byte) ([]uint64, error) {
	seqs, err := publishRetrying(ctx, q.js, q.cfg.Logger, subjects, data)
	if err != nil && ctx.Err() == nil {
		return nil, unavailable(err, "publish")
	}
	return seqs, err
}

// publishRetrying is publishAll for any JetStream context (js should have a
// PublishAsyncTimeout, or a PubAck lost with a server is waited for until
// ctx ends). Its error is the last publish error, or ctx's.
func publishRetrying(ctx context.Context, js jetstream.JetStream, log *slog.Logger, subjects []string, data [][]byte) ([]uint64, error) {
	seqs := make([]uint64, len(subjects))
	todo := make([]int, len(subjects))
	for i := range todo {
		todo[i] = i
	}
	deadline := time.Now().Add(publishRetryFor)
	wait := 50 * time.Millisecond
	for {
		var again []int
		var lastErr error
		futures := make([]jetstream.PubAckFuture, len(todo))
		for j, i := range todo {
			f, err := js.PublishAsync(subjects[i], data[i])
			if err != nil {
				if !transient(err) {
					return nil, fmt.Errorf("publish %s: %w", subjects[i], err)
				}
				again, lastErr = append(again, i), err
				continue
			}
			futures[j] = f
		}
		for j, f := range futures {
			if f == nil {
				continue
			}
			i := todo[j]
			select {
			case ack := <-f.Ok():
				seqs[i] = ack.Sequence
			case err := <-f.Err():
				if !transient(err) {
					return nil, fmt.Errorf("publish %s: %w", subjects[i], err)
				}
				again, lastErr = append(again, i), err
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if len(again) == 0 {
			return seqs, nil
		}
		if time.Now().Add(wait).After(deadline) {
			return nil, fmt.Errorf("publish %s (and %d more): %w", subjects[again[0]], len(again)-1, lastErr)
		}
		log.Debug("jetstream queue: publishing again", "count", len(again), "err", lastErr)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
		wait = min(2*wait, time.Second)
		todo = again
	}
}

// durable returns the name of partition p's consumer.
func (q *Queue) durable(p int) string { return fmt.Sprintf("%s_Q_%d", q.cfg.Prefix, p) }

// partition returns the partition of a connector.
func (q *Queue) partition(connectorID string) int {
	h := fnv.New32a()
	h.Write([]byte(connectorID))
	return int(h.Sum32() % uint32(q.cfg.Partitions))
}

// subject returns the queue subject of a delivery.
func (q *Queue) subject(connectorID, eventID string) string {
	return fmt.Sprintf("%s.q.%d.%s.%s", q.cfg.Prefix, q.partition(connectorID), connectorID, eventID)
}

// connectorFilter returns the subject filter of a connector's deliveries.
func (q *Queue) connectorFilter(connectorID string) string {
	return fmt.Sprintf("%s.q.%d.%s.>", q.cfg.Prefix, q.partition(connectorID), connectorID)
}

// deadFilter returns the subject filter of a connector's dead letters.
func (q *Queue) deadFilter(connectorID string) string {
	return fmt.Sprintf("%s.dl.%d.%s.>", q.cfg.Prefix, q.partition(connectorID), connectorID)
}

// deadSubject returns the dead-letter subject of a delivery.
func (q *Queue) deadSubject(connectorID, eventID string) string {
	return fmt.Sprintf("%s.dl.%d.%s.%s", q.cfg.Prefix, q.partition(connectorID), connectorID, eventID)
}

// checkToken reports whether s may be one token of a subject.
func checkToken(what, s string) error {
	if s == "" || strings.ContainsAny(s, ".*> \t\r\n") {
		return dcon.Errorf(dcon.EINVALID, "%s %q cannot name a queue subject", what, s)
	}
	return nil
}

func checkDelivery(d *dcon.Delivery) error {
	if err := checkToken("connector id", d.ConnectorID); err != nil {
		return err
	}
	return checkToken("event id", d.EventID)
}

// Enqueue publishes ds, pipelined, and returns when the server has
// acknowledged every one (stored in a quorum of the replicas).
func (q *Queue) Enqueue(ctx context.Context, ds []dcon.Delivery) error {
	if len(ds) == 0 {
		return ctx.Err()
	}
	for i := range ds {
		if err := checkDelivery(&ds[i]); err != nil {
			return err
		}
	}
	subjects := make([]string, len(ds))
	data := make([][]byte, len(ds))
	for i := range ds {
		subjects[i] = q.subject(ds[i].ConnectorID, ds[i].EventID)
		data[i] = encodeRecord(&ds[i], time.Time{})
	}
	seqs, err := q.publishAll(ctx, subjects, data)
	if err != nil {
		return fmt.Errorf("enqueue: %w", err)
	}
	for i := range ds {
		q.remember(ds[i], seqs[i])
	}
	return nil
}

// remember records that version seq of d is the one stored, unless a newer
// one is known already.
func (q *Queue) remember(d dcon.Delivery, seq uint64) {
	k := key{d.ConnectorID, d.EventID}
	d.Body = slices.Clone(d.Body)
	q.mu.Lock()
	defer q.mu.Unlock()
	if e, ok := q.held[k]; ok {
		if e.seq >= seq {
			return
		}
		if e.msg != nil {
			_ = e.msg.Ack() // that version is gone; free its consumer slot
		}
	}
	q.held[k] = &entry{seq: seq, d: d}
}

// forget drops k's entry, if any, and records its version as removed. Called
// with q.mu held.
func (q *Queue) forget(k key) {
	e, ok := q.held[k]
	if !ok {
		return
	}
	delete(q.held, k)
	if e.msg != nil {
		_ = e.msg.Ack()
	}
	if len(q.gone) >= maxGone {
		q.oldGone, q.gone = q.gone, make(map[key]uint64)
	}
	q.gone[k] = max(q.gone[k], e.seq)
}

// removed reports whether version seq of k was removed by this node. Called
// with q.mu held.
func (q *Queue) removed(k key, seq uint64) bool {
	return seq <= q.gone[k] || seq <= q.oldGone[k]
}

// Claim fetches what the partitions' consumers have for this node, then
// returns up to limit of the held deliveries due at or before now, earliest
// Due first (ties by connector, then event), leased until leaseUntil.
//
// A held delivery may have been acked or rewritten by another node since
// this one fetched it — typically a fresh copy that this node fetched while
// the node that enqueued it made its first attempt, held here until that
// hand-off's lease ends. So before returning a delivery, Claim asks the
// stream's leader whether its version is still the one stored (see
// stillStored), and forgets those that are not. That costs one request per
// claimed delivery (retries and recovered leases, never fresh copies); if
// the leader does not answer, the delivery is claimed anyway: a duplicate
// rather than a loss.
func (q *Queue) Claim(ctx context.Context, now, leaseUntil time.Time, limit int) ([]dcon.Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	q.mu.Lock()
	q.lastNow = now
	q.mu.Unlock()
	if err := q.fetch(ctx); err != nil {
		return nil, err
	}
	q.mu.Lock()
	var due []*entry
	for _, e := range q.held {
		if e.msg != nil && !e.d.Due.After(now) {
			due = append(due, e)
		}
	}
	slices.SortFunc(due, func(a, b *entry) int {
		return cmp.Or(a.d.Due.Compare(b.d.Due),
			strings.Compare(a.d.ConnectorID, b.d.ConnectorID),
			strings.Compare(a.d.EventID, b.d.EventID))
	})
	due = due[:min(limit, len(due))]
	seqs := make([]uint64, len(due))
	for i, e := range due {
		seqs[i] = e.seq
	}
	subjects := make([]string, len(due))
	for i, e := range due {
		subjects[i] = q.subject(e.d.ConnectorID, e.d.EventID)
	}
	q.mu.Unlock()
	stored := q.stillStored(ctx, subjects, seqs)
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]dcon.Delivery, 0, len(due))
	for i, e := range due {
		k := key{e.d.ConnectorID, e.d.EventID}
		if cur, ok := q.held[k]; !ok || cur != e || e.seq != seqs[i] || e.msg == nil {
			continue // acked, retried or replaced here meanwhile
		}
		if !stored[i] {
			q.forget(k)
			continue
		}
		e.d.Due, e.leased = leaseUntil, true
		_ = e.msg.InProgress()
		d := e.d
		d.Body = slices.Clone(e.d.Body)
		out = append(out, d)
	}
	return out, nil
}

// stillStored reports, for each subject, whether the stream still holds
// version seqs[i] of it — true as well when the leader does not answer.
func (q *Queue) stillStored(ctx context.Context, subjects []string, seqs []uint64) []bool {
	stored := make([]bool, len(subjects))
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxParallel)
	for i := range subjects {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			last, err := q.lastSeq(ctx, subjects[i])
			stored[i] = err != nil || last == seqs[i]
		})
	}
	wg.Wait()
	return stored
}

// fetch takes every message the consumers have for this node into held, and
// hands back (parks) those due long after the latest Claim's now.
func (q *Queue) fetch(ctx context.Context) error {
	if q.nc.Status() != nats.CONNECTED {
		return unavailable(nats.ErrConnectionClosed, "fetch: connection %v", q.nc.Status())
	}
	// Partitions where this node knows of a stored delivery it has not been
	// given: a quick "no messages" from there is double-checked.
	expect := make([]bool, len(q.consumers))
	q.mu.Lock()
	for k, e := range q.held {
		if e.msg == nil {
			expect[q.partition(k.connectorID)] = true
		}
	}
	q.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(q.consumers))
	for p := range q.consumers {
		wg.Go(func() { errs[p] = q.fetchPartition(ctx, p, expect[p]) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// fetchPartition fetches one partition's messages until a request brings
// none (the consumer has nothing more for this node, or its MaxAckPending is
// reached).
//
// It speaks the pull protocol itself rather than through
// jetstream.Consumer.FetchNoWait, whose client gives up after one second
// without an answer and then reports no error: on a loaded machine that
// silently skipped messages, which the server then delivered to nobody.
//
// A plain no-wait request is answered "no messages" at once from the
// consumer's running count of pending messages, and that count can lag: a
// purge racing the signal of a new message left it at 0 with a message
// there. So when expect is set, or every sweepEvery, an empty answer is
// checked with a request that also carries expires: the server then looks
// in the stream itself, which costs fetchExpires when there is nothing.
func (q *Queue) fetchPartition(ctx context.Context, p int, expect bool) error {
	subj := jetstream.DefaultAPIPrefix + "CONSUMER.MSG.NEXT." + q.cfg.Prefix + "_QUEUE." + q.durable(p)
	plain := fmt.Appendf(nil, `{"batch":%d,"no_wait":true}`, fetchBatch)
	sweep := fmt.Appendf(nil, `{"batch":%d,"no_wait":true,"expires":%d}`, fetchBatch, fetchExpires)
	q.mu.Lock()
	swept := time.Since(q.swept[p]) < sweepEvery
	q.mu.Unlock()
	req, checking := plain, false
	for ctx.Err() == nil {
		inbox := q.nc.NewInbox()
		ch := make(chan *nats.Msg, fetchBatch+8)
		sub, err := q.nc.ChanSubscribe(inbox, ch)
		if err != nil {
			return unavailable(err, "fetch partition %d", p)
		}
		more, err := q.readBatch(ctx, p, subj, inbox, req, ch)
		_ = sub.Unsubscribe()
		switch {
		case err != nil:
			return err
		case more:
			req, checking = plain, false
		case !checking && (expect || !swept):
			req, checking, swept = sweep, true, true
			q.mu.Lock()
			q.swept[p] = time.Now()
			q.mu.Unlock()
		default:
			return nil
		}
	}
	return ctx.Err()
}

// readBatch sends one pull request and takes what it brings. It reports
// whether to ask again: whenever this request brought anything, since a
// request may expire while the server is still sending (on a loaded machine),
// and the consumer's count of what is left can lag.
func (q *Queue) readBatch(ctx context.Context, p int, subj, inbox string, req []byte, ch <-chan *nats.Msg) (more bool, err error) {
	lost := q.lostSignal()
	if err := q.nc.PublishRequest(subj, inbox, req); err != nil {
		return false, unavailable(err, "fetch partition %d", p)
	}
	timer := time.NewTimer(fetchTimeout)
	defer timer.Stop()
	for n := 0; n < fetchBatch; {
		select {
		case m := <-ch:
			if status := m.Header.Get("Status"); status != "" && len(m.Data) == 0 {
				if status == "100" { // a heartbeat
					continue
				}
				// 404 no messages, 408 request expired, 409 MaxAckPending
				// reached: this request is over.
				return n > 0, nil
			}
			n++
			q.take(m)
			timer.Reset(fetchTimeout)
		case <-timer.C:
			return false, unavailable(errors.New("no answer"), "fetch partition %d", p)
		case <-lost:
			return false, unavailable(errConnectionLost, "fetch partition %d", p)
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	return true, nil
}

// take indexes one fetched message and returns how many more the consumer
// has not delivered yet.
func (q *Queue) take(m *nats.Msg) (left uint64) {
	md, err := m.Metadata()
	if err != nil {
		q.cfg.Logger.Error("jetstream queue: message without metadata", "subject", m.Subject, "err", err)
		return 0
	}
	left = md.NumPending
	seq := md.Sequence.Stream
	d, _, err := decodeRecord(m.Data)
	if err != nil {
		q.cfg.Logger.Error("jetstream queue: undecodable delivery, terminated", "subject", m.Subject, "seq", seq, "err", err)
		_ = m.Term()
		return left
	}
	k := key{d.ConnectorID, d.EventID}
	q.mu.Lock()
	defer q.mu.Unlock()
	e, ok := q.held[k]
	switch {
	case q.removed(k, seq), ok && e.seq > seq:
		_ = m.Ack() // a version removed or replaced already
		return left
	case ok && e.seq == seq:
		e.msg = m // the version this node enqueued or retried, or a redelivery
	default:
		if ok && e.msg != nil {
			_ = e.msg.Ack()
		}
		e = &entry{seq: seq, d: d, msg: m}
		q.held[k] = e
	}
	if !e.leased && !q.lastNow.IsZero() {
		if wait := e.d.Due.Sub(q.lastNow); wait > q.cfg.ParkAfter {
			_ = m.NakWithDelay(wait)
			delete(q.held, k)
		}
	}
	return left
}

// Ack removes ds: it deletes each one's stored version by its stream
// sequence — the one this node knows, else the subject's latest — and, when
// that version was replaced meanwhile, the version that replaced it, until
// the subject holds none. A Retry racing the Ack then fails its CAS on the
// deleted sequence, so it cannot bring the delivery back. A version of
// another copy — another EventTime: a :sync or a replay re-sent the event
// while an attempt of ds was under way — is not removed.
//
// Ack does not purge the subject: the server handles a purge of a subject
// narrower than a consumer's filter by emptying that consumer's redelivery
// queue, so on a partition whose deliveries were acked often enough the
// messages of a dead node were never redelivered (issue 6). A delete by
// sequence only touches the consumer's state for that sequence.
func (q *Queue) Ack(ctx context.Context, ds []dcon.Delivery) error {
	for i := range ds {
		if err := checkDelivery(&ds[i]); err != nil {
			return err
		}
	}
	seqs := make([]uint64, len(ds))
	other := make([]bool, len(ds)) // this node holds another copy
	q.mu.Lock()
	for i, d := range ds {
		k := key{d.ConnectorID, d.EventID}
		if e, ok := q.held[k]; ok {
			if other[i] = !e.d.EventTime.Equal(d.EventTime); other[i] {
				continue
			}
			seqs[i] = e.seq
		}
		q.forget(k)
	}
	q.mu.Unlock()
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxParallel)
	errs := make([]error, len(ds))
	for i := range ds {
		if other[i] {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = q.remove(ctx, q.subject(ds[i].ConnectorID, ds[i].EventID), seqs[i], ds[i].EventTime)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// maxRemoveTries bounds how many versions of one subject remove deletes in
// turn (each try follows a concurrent write of the subject).
const maxRemoveTries = 16

// remove deletes the stored version of subj: seq if it is still stored (0:
// unknown), else whichever the subject holds, until it holds none — but not
// a version of another copy, one whose EventTime is not eventTime (a :sync
// or a replay re-sent the event meanwhile).
func (q *Queue) remove(ctx context.Context, subj string, seq uint64, eventTime time.Time) error {
	for range maxRemoveTries {
		if seq == 0 {
			var d *dcon.Delivery
			var err error
			if seq, d, err = q.lastVersion(ctx, subj); err != nil || seq == 0 {
				return err
			}
			if d != nil && !d.EventTime.Equal(eventTime) {
				return nil
			}
		}
		var resp apiResponse
		if err := q.api(ctx, "STREAM.MSG.DELETE."+q.cfg.Prefix+"_QUEUE", map[string]any{"seq": seq, "no_erase": true}, &resp); err != nil {
			return unavailable(err, "remove %s", subj)
		}
		if resp.Error == nil && resp.Success {
			return nil
		}
		// Refused: that version is gone already (acked elsewhere, or
		// replaced by a write). Remove whatever the subject holds now.
		seq = 0
	}
	return unavailable(errors.New("written again on every try"), "remove %s", subj)
}

// lastSeq returns the stream sequence of subj's stored version, 0 if none.
// It asks the stream's leader (not a direct get, which a lagging replica
// may answer).
func (q *Queue) lastSeq(ctx context.Context, subj string) (uint64, error) {
	var m struct {
		Seq uint64 `json:"seq"`
	}
	err := q.lastMessage(ctx, subj, &m)
	return m.Seq, err
}

// lastVersion is lastSeq, with the delivery that version holds (nil when
// it does not decode).
func (q *Queue) lastVersion(ctx context.Context, subj string) (uint64, *dcon.Delivery, error) {
	var m struct {
		Seq  uint64 `json:"seq"`
		Data []byte `json:"data"`
	}
	if err := q.lastMessage(ctx, subj, &m); err != nil || m.Seq == 0 {
		return 0, nil, err
	}
	d, _, err := decodeRecord(m.Data)
	if err != nil {
		return m.Seq, nil, nil
	}
	return m.Seq, &d, nil
}

// lastMessage asks the stream's leader for subj's stored version and
// decodes it into msg, which it leaves as it is when there is none.
func (q *Queue) lastMessage(ctx context.Context, subj string, msg any) error {
	var resp struct {
		apiResponse
		Message json.RawMessage `json:"message"`
	}
	if err := q.api(ctx, "STREAM.MSG.GET."+q.cfg.Prefix+"_QUEUE", map[string]string{"last_by_subj": subj}, &resp); err != nil {
		return unavailable(err, "look up %s", subj)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrCode == uint16(jetstream.JSErrCodeMessageNotFound):
		return nil
	case resp.Error != nil:
		return unavailable(errors.New(resp.Error.Description), "look up %s", subj)
	case len(resp.Message) == 0 || string(resp.Message) == "null":
		return unavailable(errors.New("no message in the answer"), "look up %s", subj)
	}
	if err := json.Unmarshal(resp.Message, msg); err != nil {
		return unavailable(err, "look up %s", subj)
	}
	return nil
}

// apiResponse is the common part of the server's JetStream API answers.
type apiResponse struct {
	Success bool `json:"success"`
	Error   *struct {
		Code        int    `json:"code"`
		ErrCode     uint16 `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
}

// api sends a JetStream API request (subject after $JS.API.) and decodes
// its answer into resp.
func (q *Queue) api(ctx context.Context, subj string, req, resp any) error {
	data, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	ctx, cancel := q.untilLost(ctx)
	defer cancel()
	msg, err := q.nc.RequestWithContext(ctx, jetstream.DefaultAPIPrefix+subj, data)
	if err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, errConnectionLost) {
			return cause
		}
		return err
	}
	if err := json.Unmarshal(msg.Data, resp); err != nil {
		return fmt.Errorf("bad answer: %w", err)
	}
	return nil
}

// purgeResponse is the server's answer to a purge.
type purgeResponse struct {
	apiResponse
	Purged uint64 `json:"purged"`
}

// purge removes the queue stream's messages on subjects matching filter and
// returns how many there were. (Stream.Purge does not say.) Only Drop
// purges: see Ack.
func (q *Queue) purge(ctx context.Context, filter string) (int, error) {
	var resp purgeResponse
	if err := q.api(ctx, "STREAM.PURGE."+q.cfg.Prefix+"_QUEUE", map[string]string{"filter": filter}, &resp); err != nil {
		return 0, unavailable(err, "purge %s", filter)
	}
	if resp.Error != nil || !resp.Success {
		desc := "not successful"
		if resp.Error != nil {
			desc = resp.Error.Description
		}
		return 0, unavailable(errors.New(desc), "purge %s", filter)
	}
	return int(resp.Purged), nil
}

// Retry writes d's new version — Attempts, LastError, Due at — over the one
// this node knows, and only over it: if the delivery was acked, dropped or
// replaced meanwhile, the write is refused by the server and Retry does
// nothing. A delivery this node knows nothing of is not queued as far as it
// can tell, and one it knows as another copy (of another EventTime: a :sync
// or a replay re-sent the event) is not d's; in both cases nothing is
// written.
func (q *Queue) Retry(ctx context.Context, d dcon.Delivery, at time.Time) error {
	if err := checkDelivery(&d); err != nil {
		return err
	}
	k := key{d.ConnectorID, d.EventID}
	q.mu.Lock()
	e, ok := q.held[k]
	var cur dcon.Delivery
	var seq uint64
	if ok {
		cur, seq = e.d, e.seq
	}
	q.mu.Unlock()
	if !ok || !cur.EventTime.Equal(d.EventTime) {
		return nil // not known here, or replaced by another copy (a :sync, a replay)
	}
	cur.Attempts, cur.LastError, cur.Due = d.Attempts, d.LastError, at
	subj := q.subject(d.ConnectorID, d.EventID)
	pctx, cancel := q.untilLost(ctx)
	_, err := q.js.Publish(pctx, subj, encodeRecord(&cur, time.Time{}), jetstream.WithExpectLastSequencePerSubject(seq))
	if cause := context.Cause(pctx); err != nil && errors.Is(cause, errConnectionLost) {
		err = cause
	}
	cancel()
	var apiErr *jetstream.APIError
	switch {
	case errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant):
		return nil // acked, dropped or replaced meanwhile
	case err != nil:
		return unavailable(err, "retry %s/%s", d.ConnectorID, d.EventID)
	}
	// The new version goes to whichever node fetches it next. The
	// consumer's count of pending messages may not show it yet (the old
	// version's removal races the new one's signal), so this node's next
	// fetch of the partition checks the stream itself.
	q.mu.Lock()
	if e, ok := q.held[k]; ok && e.seq == seq {
		q.forget(k)
	}
	q.swept[q.partition(d.ConnectorID)] = time.Time{}
	q.mu.Unlock()
	return nil
}

// Expire writes ds's dead letters, waits until the server has them, then
// removes ds from the queue.
func (q *Queue) Expire(ctx context.Context, ds []dcon.Delivery, at time.Time) error {
	if len(ds) == 0 {
		return nil
	}
	for i := range ds {
		if err := checkDelivery(&ds[i]); err != nil {
			return err
		}
	}
	subjects := make([]string, len(ds))
	data := make([][]byte, len(ds))
	for i := range ds {
		subjects[i] = q.deadSubject(ds[i].ConnectorID, ds[i].EventID)
		data[i] = encodeRecord(&ds[i], at)
	}
	if _, err := q.publishAll(ctx, subjects, data); err != nil {
		return fmt.Errorf("expire: %w", err)
	}
	return q.Ack(ctx, ds)
}

// Drop purges every queued delivery of a connector and returns how many there
// were. Its dead letters stay.
func (q *Queue) Drop(ctx context.Context, connectorID string) (int, error) {
	if err := checkToken("connector id", connectorID); err != nil {
		return 0, err
	}
	q.mu.Lock()
	for k := range q.held {
		if k.connectorID == connectorID {
			q.forget(k)
		}
	}
	q.mu.Unlock()
	return q.purge(ctx, q.connectorFilter(connectorID))
}

// Depth counts a connector's queued deliveries on the server: the subjects
// under its filter. It costs a stream-info request whose answer grows with
// the depth.
func (q *Queue) Depth(ctx context.Context, connectorID string) (int, error) {
	if err := checkToken("connector id", connectorID); err != nil {
		return 0, err
	}
	info, err := q.queue.Info(ctx, jetstream.WithSubjectFilter(q.connectorFilter(connectorID)))
	if err != nil {
		return 0, unavailable(err, "depth of %s", connectorID)
	}
	n := 0
	for _, c := range info.State.Subjects {
		n += int(c)
	}
	return n, nil
}

// DeadLetters reads every dead letter of a connector, sorts them by expiry
// time (then event id) and returns the oldest limit.
func (q *Queue) DeadLetters(ctx context.Context, connectorID string, limit int) ([]dcon.DeadLetter, error) {
	if err := checkToken("connector id", connectorID); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	dls, err := q.readDeadLetters(ctx, q.deadFilter(connectorID))
	if err != nil {
		return nil, err
	}
	out := make([]dcon.DeadLetter, len(dls))
	for i := range dls {
		out[i] = dls[i].DeadLetter
	}
	slices.SortFunc(out, func(a, b dcon.DeadLetter) int {
		return cmp.Or(a.ExpireTime.Compare(b.ExpireTime), strings.Compare(a.EventID, b.EventID))
	})
	return out[:min(limit, len(out))], nil
}
