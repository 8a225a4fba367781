package ingest

import (
	"testing"
	"time"

	"dcon/internal/memqueue"
)

// TestSweeperDefaults: dead letters are kept 7 days, swept every hour,
// unless told otherwise (dcon serve --dead-letter-retention).
func TestSweeperDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                  string
		cfg                   SweeperConfig
		retention, sweepEvery time.Duration
	}{
		{"defaults", SweeperConfig{}, 7 * 24 * time.Hour, time.Hour},
		{"configured", SweeperConfig{Retention: 48 * time.Hour, Every: time.Minute}, 48 * time.Hour, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.cfg.Queue = memqueue.New()
			s, err := NewSweeper(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if s.cfg.Retention != tt.retention || s.cfg.Every != tt.sweepEvery {
				t.Errorf("retention %v, every %v; want %v and %v", s.cfg.Retention, s.cfg.Every, tt.retention, tt.sweepEvery)
			}
		})
	}
	if _, err := NewSweeper(SweeperConfig{}); err == nil {
		t.Error("NewSweeper without a queue: no error")
	}
}
