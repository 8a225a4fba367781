package stats

import (
	"math"
	"time"

	"dcon"
)

// The shape of a connector's statistics.
const (
	// Buckets is the number of time buckets that cover dcon.MetricsWindow.
	Buckets = 18
	// BucketWidth is the span of one bucket: 10 minutes.
	BucketWidth = dcon.MetricsWindow / Buckets
	// Bins is the number of bins of a latency histogram.
	Bins = 64
	// binMin is the upper bound of bin 0, and binGrowth the ratio of the upper
	// bounds of two consecutive bins.
	binMin    = 100 * time.Microsecond
	binGrowth = 1.25
)

// bounds holds the upper bound of each histogram bin.
type bounds [Bins]time.Duration

// newBounds returns binMin × binGrowth^i for each bin i.
func newBounds() *bounds {
	var b bounds
	for i := range b {
		b[i] = time.Duration(math.Round(float64(binMin) * math.Pow(binGrowth, float64(i))))
	}
	return &b
}

// bin returns the index of the bin that holds d: the first whose upper bound is
// at least d, or the last.
func (b *bounds) bin(d time.Duration) int {
	lo, hi := 0, Bins-1
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if b[mid] < d {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// percentile returns the upper bound of the bin that holds the q-quantile
// (0 < q ≤ 1) of the counts in bins, or 0 if they are all zero.
func (b *bounds) percentile(bins *[Bins]uint64, q float64) time.Duration {
	var total uint64
	for _, n := range bins {
		total += n
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total))) // the rank-th smallest, from 1
	rank = max(rank, 1)
	var seen uint64
	for i, n := range bins {
		seen += n
		if seen >= rank {
			return b[i]
		}
	}
	return b[Bins-1]
}

// bucket is one time bucket of a connector's statistics.
type bucket struct {
	epoch  int64 // the bucket number: Unix time / BucketWidth; see noEpoch
	ok     uint32
	failed uint32
	bins   [Bins]uint32
}

// noEpoch marks a bucket that holds nothing yet.
const noEpoch = math.MinInt64

// epochOf returns the number of the bucket that holds t.
func epochOf(t time.Time) int64 {
	ns := t.UnixNano()
	e := ns / int64(BucketWidth)
	if ns < 0 && ns%int64(BucketWidth) != 0 {
		e-- // floor, not truncation, before 1970
	}
	return e
}

// slot returns the position of bucket epoch in a ring of Buckets.
func slot(epoch int64) int {
	s := epoch % Buckets
	if s < 0 {
		s += Buckets
	}
	return int(s)
}
