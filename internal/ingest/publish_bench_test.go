package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"testing"

	"dcon"
	"dcon/internal/ingest"
	"dcon/internal/pebble"
)

// BenchmarkPublishParallel measures single-event publishes from about 64
// goroutines, as the bench's throughput/single drives them: device lookup,
// validation, the latest event, routing to one connector, one synced commit
// shared with the concurrent publishers.
func BenchmarkPublishParallel(b *testing.B) {
	ctx := context.Background()
	db, err := pebble.Open(b.TempDir(), pebble.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	c := &dcon.Connector{ProjectID: project, ID: "c0000000000000000000", Type: dcon.ConnectorHTTPPush,
		Status: dcon.StatusActive, Labels: []string{"name"}, HTTP: dcon.HTTPConfig{URL: "https://example.com/"}}
	if err := db.CreateConnector(ctx, c); err != nil {
		b.Fatal(err)
	}
	router, err := ingest.NewRouter(ctx, db, db)
	if err != nil {
		b.Fatal(err)
	}
	in, err := ingest.New(ingest.Config{Devices: db, Router: router, Queue: db, Dispatch: acker{db}, Latest: db})
	if err != nil {
		b.Fatal(err)
	}
	const devices = 64
	for i := range devices {
		dev := fmt.Sprintf("emu%020d", i)
		if err := db.CreateDevice(ctx, &dcon.Device{ProjectID: project, ID: dev, Type: dcon.DeviceTemperature,
			Labels: map[string]string{"name": dev}}); err != nil {
			b.Fatal(err)
		}
	}
	data := json.RawMessage(`{"value":21.5}`)
	b.ReportAllocs()
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			dev := fmt.Sprintf("emu%020d", i%devices)
			i++
			if _, err := in.Publish(ctx, project, dev, dcon.EventTemperature, data); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
