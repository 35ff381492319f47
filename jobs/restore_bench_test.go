package jobs

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

// BenchmarkRestoreUpload restores one archived media of each size into
// MCS (the in-process emulator) and prints the peak heap during the
// upload: the file streams from the archive through its SHA-256 check
// into the request, so the peak must not follow the file's size (issue
// #15: files up to 150 MB).
//
//	go test ./jobs/ -run '^$' -bench RestoreUpload -benchtime 1x
func BenchmarkRestoreUpload(b *testing.B) {
	for _, size := range []int{1 << 20, 32 << 20, 150 << 20} {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			rb := restoreSetupSized(b, 1, size)
			b.SetBytes(int64(size))
			var peak uint64
			for b.Loop() {
				id := rb.restore(b)
				runtime.GC()
				var base runtime.MemStats
				runtime.ReadMemStats(&base)
				stop := make(chan struct{})
				var wg sync.WaitGroup
				var top uint64
				wg.Go(func() {
					var m runtime.MemStats
					t := time.NewTicker(5 * time.Millisecond)
					defer t.Stop()
					for {
						runtime.ReadMemStats(&m)
						if m.HeapInuse > top {
							top = m.HeapInuse
						}
						select {
						case <-stop:
							return
						case <-t.C:
						}
					}
				})
				err := rb.batch(b, id, 0)
				close(stop)
				wg.Wait()
				if err != nil {
					b.Fatal(err)
				}
				if top > base.HeapInuse {
					peak = max(peak, top-base.HeapInuse)
				}
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(peak)/float64(size), "peak-heap/file")
		})
	}
}
