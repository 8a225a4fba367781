package stats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"dcon"
)

// Connectors finds and updates connectors; *ingest.Router implements it.
// Connectors it returns are shared and are not modified.
type Connectors interface {
	Lookup(id string) (*dcon.Connector, bool)
	UpdateConnector(ctx context.Context, c *dcon.Connector) error
}

// DefaultCheckInterval is how often a started Watchdog checks.
const DefaultCheckInterval = time.Minute

// WatchdogConfig configures a Watchdog. Tracker and Connectors are required.
type WatchdogConfig struct {
	// Tracker says since when each connector has been failing.
	Tracker *Tracker
	// Connectors finds connectors and stores the disabled ones.
	Connectors Connectors
	// After is how long an ACTIVE connector may fail, with no success, before
	// it is disabled. Default: dcon.AutoDisableAfter (5 days).
	After time.Duration
	// CheckInterval is how often Start's loop checks. A connector is disabled
	// at most this late. Default: DefaultCheckInterval (1 minute).
	CheckInterval time.Duration
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Logger logs each connector disabled (warn) and failed checks (error).
	// Default: discard.
	Logger *slog.Logger
}

func (c *WatchdogConfig) setDefaults() error {
	if c.Tracker == nil || c.Connectors == nil {
		return errors.New("stats: the watchdog's Tracker and Connectors are required")
	}
	if c.After < 0 || c.CheckInterval < 0 {
		return fmt.Errorf("stats: watchdog After %v and CheckInterval %v must not be negative", c.After, c.CheckInterval)
	}
	if c.After == 0 {
		c.After = dcon.AutoDisableAfter
	}
	if c.CheckInterval == 0 {
		c.CheckInterval = DefaultCheckInterval
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Watchdog disables connectors that have failed for too long; see the package
// doc. It also makes the Tracker forget connectors that no longer exist.
type Watchdog struct {
	cfg WatchdogConfig

	startOnce sync.Once
	stopOnce  sync.Once
	stop      chan struct{}
	done      chan struct{}
}

// NewWatchdog returns a Watchdog; Start starts its checks.
func NewWatchdog(cfg WatchdogConfig) (*Watchdog, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	return &Watchdog{cfg: cfg, stop: make(chan struct{}), done: make(chan struct{})}, nil
}

// Check disables every ACTIVE connector that has been failing for After or
// longer, counted from the later of its failingSince and its UpdateTime, and
// returns how many it disabled. It goes on past a connector it cannot update
// and returns the errors together.
func (w *Watchdog) Check(ctx context.Context) (int, error) {
	now := w.cfg.Now()
	disabled := 0
	var errs []error
	for _, s := range w.cfg.Tracker.snapshot() {
		c, ok := w.cfg.Connectors.Lookup(s.id)
		if !ok {
			w.cfg.Tracker.Forget(s.id) // deleted
			continue
		}
		if s.failingSince.IsZero() || c.Status != dcon.StatusActive {
			continue
		}
		since := s.failingSince
		if c.UpdateTime.After(since) {
			since = c.UpdateTime // revived or changed since the streak began
		}
		if now.Sub(since) < w.cfg.After {
			continue
		}
		n := c.Clone()
		n.Status = dcon.StatusSystemDisabled
		n.StatusReason = fmt.Sprintf("no successful delivery since %s (%s)", dcon.FormatTime(since), days(w.cfg.After))
		n.UpdateTime = now
		if err := w.cfg.Connectors.UpdateConnector(ctx, n); err != nil {
			errs = append(errs, fmt.Errorf("disable connector %s: %w", c.ID, err))
			continue
		}
		disabled++
		w.cfg.Logger.Warn("data connector disabled", "connector", n.Name(), "reason", n.StatusReason)
	}
	return disabled, errors.Join(errs...)
}

// days writes d in days when it is a whole number of them ("5 days", "1 day"),
// else as time.Duration does.
func days(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d == day:
		return "1 day"
	case d > 0 && d%day == 0:
		return fmt.Sprintf("%d days", d/day)
	default:
		return d.String()
	}
}

// Start checks every CheckInterval until Stop.
func (w *Watchdog) Start(ctx context.Context) error {
	w.startOnce.Do(func() { go w.loop() })
	return nil
}

func (w *Watchdog) loop() {
	defer close(w.done)
	tick := time.NewTicker(w.cfg.CheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-tick.C:
			if _, err := w.Check(context.Background()); err != nil {
				w.cfg.Logger.Error("auto-disable check", "err", err)
			}
		}
	}
}

// Stop ends Start's loop, waiting for a check under way until ctx is done.
func (w *Watchdog) Stop(ctx context.Context) error {
	w.stopOnce.Do(func() { close(w.stop) })
	w.startOnce.Do(func() { close(w.done) }) // never started: no loop to wait for
	return wait(ctx, w.done, "stop the watchdog")
}

// wait waits until done is closed or, if it is not already, until ctx is done.
func wait(ctx context.Context, done <-chan struct{}, what string) error {
	select {
	case <-done:
		return nil
	default:
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stats: %s: %w", what, ctx.Err())
	}
}
