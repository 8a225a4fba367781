package receiver_test

import (
	"strconv"
	"sync"
	"testing"

	"dcon/receiver"
)

func TestDedup(t *testing.T) {
	t.Parallel()
	d := receiver.NewDedup(3)
	steps := []struct {
		op   string // "seen" or "forget"
		id   string
		want bool
	}{
		{"seen", "a", false},
		{"seen", "a", true},
		{"seen", "b", false},
		{"seen", "c", false},
		{"seen", "a", true},  // a is now the most recent
		{"seen", "d", false}, // evicts b, the least recently seen
		{"seen", "b", false},
		{"seen", "a", true},
		{"forget", "a", false},
		{"seen", "a", false},
	}
	for i, s := range steps {
		switch s.op {
		case "seen":
			if got := d.Seen(s.id); got != s.want {
				t.Fatalf("step %d: Seen(%q) = %v, want %v", i, s.id, got, s.want)
			}
		case "forget":
			d.Forget(s.id)
		}
	}
	if d.Len() != 3 {
		t.Fatalf("Len = %d, want the capacity 3", d.Len())
	}
}

func TestDedupConcurrent(t *testing.T) {
	t.Parallel()
	d := receiver.NewDedup(0)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first = map[string]int{}
	)
	for range 8 {
		wg.Go(func() {
			for i := range 500 {
				id := strconv.Itoa(i)
				if !d.Seen(id) {
					mu.Lock()
					first[id]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	for id, n := range first {
		if n != 1 {
			t.Fatalf("%s handled %d times", id, n)
		}
	}
	if len(first) != 500 {
		t.Fatalf("%d ids handled, want 500", len(first))
	}
}
