package bench

import (
	"math"
	"slices"
)

// Latency holds latency percentiles in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
	N    int     `json:"samples"`
}

// latencyOf returns the percentiles of arrivals' latencies (nearest rank), or
// nil when there are none.
func latencyOf(as []arrival) *Latency {
	if len(as) == 0 {
		return nil
	}
	us := make([]int64, len(as))
	for i, a := range as {
		us[i] = a.latency
	}
	slices.Sort(us)
	q := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(us)))) - 1
		return ms(us[max(0, min(i, len(us)-1))])
	}
	return &Latency{P50: q(0.50), P90: q(0.90), P99: q(0.99), P999: q(0.999), Max: ms(us[len(us)-1]), N: len(us)}
}

// ms turns microseconds into milliseconds, rounded to the microsecond.
func ms(us int64) float64 { return float64(us) / 1000 }

// rate returns n per second over d microseconds, 0 if d is not positive.
func rate(n int, us int64) float64 {
	if us <= 0 {
		return 0
	}
	return round(float64(n) / (float64(us) / 1e6))
}

// ratio returns a/b rounded to three places, or nil when b is zero.
func ratio(a, b float64) *float64 {
	if b == 0 {
		return nil
	}
	return ptr(math.Round(a/b*1000) / 1000)
}

func round(x float64) float64 { return math.Round(x*10) / 10 }

func ptr[T any](v T) *T { return &v }

// window sums the arrivals of several sinks in [from, to) and returns them
// with the time of the last.
func window(sinks []*Sink, from, to int64) (all []arrival, last int64) {
	for _, s := range sinks {
		as := s.Arrivals(from, to)
		all = append(all, as...)
		for _, a := range as {
			last = max(last, a.at)
		}
	}
	return all, last
}
