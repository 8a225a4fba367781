package bench

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progress shows the phase under way: a bar redrawn in place on a terminal,
// one line when the phase starts and one when it ends otherwise.
type progress struct {
	w   io.Writer
	tty bool
}

// phase shows a phase until the returned function is called. cur reports how
// far it is, out of total, and a short status; total 0 shows no bar.
func (p *progress) phase(name string, total float64, cur func() (float64, string)) func() {
	if p == nil || p.w == nil {
		return func() {}
	}
	start := time.Now()
	if !p.tty {
		fmt.Fprintf(p.w, "%s ...\n", name)
		return func() {
			_, status := cur()
			fmt.Fprintf(p.w, "%s: done in %.1fs %s\n", name, time.Since(start).Seconds(), status)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	draw := func() {
		done, status := cur()
		bar := ""
		if total > 0 {
			f := min(max(done/total, 0), 1)
			n := int(f * 24)
			bar = fmt.Sprintf("[%s%s] %3.0f%% ", strings.Repeat("#", n), strings.Repeat(".", 24-n), f*100)
		}
		fmt.Fprintf(p.w, "\r\033[K%-34s %s%6.1fs %s", name, bar, time.Since(start).Seconds(), status)
	}
	wg.Go(func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			draw()
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	})
	return func() {
		close(stop)
		wg.Wait()
		draw()
		fmt.Fprintln(p.w)
	}
}

// timed is a cur function for a phase of known length.
func timed(d time.Duration, status func() string) (float64, func() (float64, string)) {
	start := time.Now()
	return d.Seconds(), func() (float64, string) { return time.Since(start).Seconds(), status() }
}
