package region_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/qakka/qakka/internal/queue"
	"github.com/qakka/qakka/internal/region"
	"github.com/qakka/qakka/internal/storage/backendtest"
)

// BenchmarkTransfer measures how fast a sender drains its outbox: b.N
// messages of 256 bytes wait in the outbox of a stopped region, and the
// clock runs from the region's restart until its queue holds all of them.
// It reports the send rate into the outbox too. It runs on every backend.
func BenchmarkTransfer(b *testing.B) {
	for _, be := range backendtest.Backends {
		for _, batchSize := range []int{10, 100} {
			b.Run(fmt.Sprintf("%s/batch=%d", be.Name, batchSize), func(b *testing.B) {
				c := newCluster(b, be, []string{"east", "west"}, func(cfg *region.Config) { cfg.BatchSize = batchSize })
				east, west := c.node("east"), c.node("west")
				createQueue(b, east, queue.Config{Name: "bench"})
				payload := make([]byte, 256)
				west.stop()

				sendStart := time.Now()
				for i := 0; i < b.N; i += 100 {
					batch := make([]queue.SendRequest, min(100, b.N-i))
					for j := range batch {
						batch[j] = queue.SendRequest{ContentType: "application/octet-stream", Data: payload}
					}
					if _, err := east.rt().Send(context.Background(), "bench", "west", batch); err != nil {
						b.Fatalf("send: %v", err)
					}
				}
				sendRate := float64(b.N) / time.Since(sendStart).Seconds()

				b.ResetTimer()
				start := time.Now()
				west.restart()
				waitFor(b, "every message in west", func() bool { return total(b, west, "bench") == int64(b.N) })
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "transfers/s")
				b.ReportMetric(sendRate, "outbox-sends/s")
			})
		}
	}
}
