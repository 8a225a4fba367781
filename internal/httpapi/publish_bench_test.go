//go:build unix

package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"dcon"
	"dcon/internal/httpapi"
	"dcon/internal/ingest"
	"dcon/internal/pebble"
)

// benchProject is the project of BenchmarkPublishHandler.
const benchProject = "c14u9p094l47cdv1o3pg"

// discard is a Dispatcher that leaves every delivery queued: the benchmark
// measures the publish path, not the delivery engine.
type discard struct{}

func (discard) Dispatch([]dcon.Delivery) {}

// cheapWriter is a ResponseWriter that keeps the status and forgets the body,
// reusing its header map, so that it costs the benchmark next to nothing.
type cheapWriter struct {
	header http.Header
	status int
	n      int
}

func (w *cheapWriter) Header() http.Header         { return w.header }
func (w *cheapWriter) WriteHeader(status int)      { w.status = status }
func (w *cheapWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

// rewindBody is a request body that can be read again.
type rewindBody struct{ bytes.Reader }

func (*rewindBody) Close() error { return nil }

// BenchmarkPublishHandler measures one single-event publish through the API
// handler as dcon serve --dev wires it (projects checked, one ACTIVE
// connector with a label, a real Pebble store, one synced commit shared by
// concurrent publishers), from about 64 goroutines as dcon bench's
// throughput scenario drives it, without the network: the request is built
// once per goroutine and its body rewound.
func BenchmarkPublishHandler(b *testing.B) {
	ctx := context.Background()
	db, err := pebble.Open(b.TempDir(), pebble.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.CreateProject(ctx, &dcon.Project{ID: benchProject, DisplayName: "bench"}); err != nil {
		b.Fatal(err)
	}
	c := &dcon.Connector{ProjectID: benchProject, ID: "c0000000000000000000", Type: dcon.ConnectorHTTPPush,
		Status: dcon.StatusActive, Labels: []string{"name"}, HTTP: dcon.HTTPConfig{URL: "https://example.com/"}}
	if err := db.CreateConnector(ctx, c); err != nil {
		b.Fatal(err)
	}
	router, err := ingest.NewRouter(ctx, db, db)
	if err != nil {
		b.Fatal(err)
	}
	in, err := ingest.New(ingest.Config{Devices: db, Router: router, Queue: db, Dispatch: discard{}, Latest: db})
	if err != nil {
		b.Fatal(err)
	}
	const devices = 64
	for i := range devices {
		dev := fmt.Sprintf("emu%020d", i)
		if err := db.CreateDevice(ctx, &dcon.Device{ProjectID: benchProject, ID: dev, Type: dcon.DeviceTemperature,
			Labels: map[string]string{"name": dev, dcon.LabelEmulated: ""}}); err != nil {
			b.Fatal(err)
		}
	}
	h := (&httpapi.Server{Connectors: router, Devices: db, Projects: db, Ingest: in}).Handler()

	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	cpu0 := processCPU(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		dev := fmt.Sprintf("emu%020d", next.Add(1)%devices)
		body := &rewindBody{}
		r, err := http.NewRequestWithContext(ctx, http.MethodPost,
			"http://127.0.0.1/v2/projects/"+benchProject+"/devices/"+dev+":publish", body)
		if err != nil {
			b.Error(err)
			return
		}
		r.Header.Set("Content-Type", "application/json")
		w := &cheapWriter{header: http.Header{}}
		var buf []byte
		for i := 0; pb.Next(); i++ {
			buf = strconv.AppendInt(append(buf[:0], `{"temperature":{"value":`...), int64(i), 10)
			buf = append(buf, "}}"...)
			body.Reset(buf)
			r.ContentLength = int64(len(buf))
			clear(w.header)
			h.ServeHTTP(w, r)
			if w.status != http.StatusOK {
				b.Errorf("status %d", w.status)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

// processCPU is the CPU time the process has used so far, user and system:
// the machine may be shared, so the CPU per publish is a steadier figure
// than the wall time.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
