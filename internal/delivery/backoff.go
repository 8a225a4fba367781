package delivery

import (
	"math/rand/v2"
	"time"
)

// Backoff is the retry policy: exponential backoff with full jitter, per
// delivery. After the n-th failed attempt the next one waits a random time in
// [0, min(Max, 2·Initial·2^(n-1))), so the first retry comes on average Initial
// after the failure, the ceiling doubles with each failure, and it stops
// growing at Max. A Retry-After from the endpoint is a floor.
type Backoff struct {
	Initial time.Duration // average first delay; default 1s
	Max     time.Duration // largest delay ceiling; default 10m
	// Rand returns a number in [0, 1); default math/rand/v2's Float64.
	Rand func() float64
}

// DefaultBackoff is the policy of the contract: about 1 s, doubling, capped at 10 minutes.
var DefaultBackoff = Backoff{Initial: time.Second, Max: 10 * time.Minute}

// Ceiling returns the upper bound of the delay after the n-th failed attempt (n ≥ 1).
func (b Backoff) Ceiling(n int) time.Duration {
	initial, maxDelay := b.Initial, b.Max
	if initial <= 0 {
		initial = DefaultBackoff.Initial
	}
	if maxDelay <= 0 {
		maxDelay = DefaultBackoff.Max
	}
	c := 2 * initial
	for i := 1; i < n && c < maxDelay; i++ {
		c *= 2
	}
	return min(c, maxDelay)
}

// Delay returns the time to wait after the n-th failed attempt, at least
// retryAfter (the endpoint's Retry-After, 0 if none).
func (b Backoff) Delay(n int, retryAfter time.Duration) time.Duration {
	r := b.Rand
	if r == nil {
		r = rand.Float64
	}
	d := time.Duration(r() * float64(b.Ceiling(n)))
	return max(d, retryAfter)
}
