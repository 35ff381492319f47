package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"text/tabwriter"
	"time"

	"github.com/mediasync/mediasync/archive"
)

// What bounds a ratio target, from this run's own figures: the part of the
// pipeline's cost over the bare copy that an invariant or an issue
// requires, and the most pipeline ÷ bare can be while it is paid.
type bound struct {
	scenario, cause, figure string
}

// bounds computes, for the small and large scenarios, the ceiling that
// what the pipeline must do beyond a bare copy puts on pipeline ÷ bare:
//   - small: storing each message's record (issue #17). The bare copy that
//     also stores them is measured (bare records); its media/s over the
//     bare copy's is the most any pipeline that stores them reaches.
//   - large: SHA-256 and the Sniffer over every byte (invariant 1: no
//     delete without the hash and the plausibility check), timed in this
//     process. With all parts' CPU per file at the bare copy's plus that,
//     the machine's CPUs allow at most so many files a second.
func bounds(outcomes []outcome) []bound {
	var out []bound
	for _, o := range outcomes {
		if o.bare == nil {
			continue
		}
		switch {
		case o.sc.kind == "small":
			w := o.withRecords()
			if w == nil {
				continue
			}
			out = append(out, bound{o.sc.name, "storing each message's record (issue #17)",
				fmt.Sprintf("the bare copy with them: %s media/s, %.2f of the bare copy's %s: the most a pipeline that stores them reaches",
					f1(w.mediaPerSec()), ratioOf(w.mediaPerSec(), o.bare.mediaPerSec()), f1(o.bare.mediaPerSec()))})
		case o.sc.largeFiles > 0 || o.sc.convFiles > 0:
			size := max(o.sc.largeFiles, o.sc.convFiles)
			checks := checksCost(size)
			bare := perMedia(o.bare.cpu.total(), o.bare.media)               // CPU ms per file
			most := ratioOf(float64(runtime.NumCPU())*1000, bare+ms(checks)) // files/s
			ceiling := min(1, ratioOf(most, o.bare.mediaPerSec()))
			out = append(out, bound{o.sc.name, "SHA-256 and the Sniffer over every byte (invariant 1)",
				fmt.Sprintf("%.0f CPU ms per %d MiB file, timed here in cache (the worker reads them cold: a floor); on top of the bare copy's %.0f, %d CPUs allow %.1f files/s against the bare copy's %.1f: at most %.2f",
					ms(checks), size>>20, bare, runtime.NumCPU(), most, o.bare.mediaPerSec(), ceiling)})
		}
	}
	return out
}

func ms(d time.Duration) float64 { return d.Seconds() * 1000 }

// checksCost is the CPU time of the worker's checks over one file of size
// bytes beyond what a bare copy does: its SHA-256 and the Sniffer's scan,
// written 32 KiB at a time as a download goes by, over random bytes (the
// benchmark's media are random bytes behind a signature). The best of
// three, so that another program's slice is not counted.
func checksCost(size int64) time.Duration {
	buf := make([]byte, 1<<20)
	r := rand.NewChaCha8([32]byte{})
	r.Read(buf)
	best := time.Duration(1<<63 - 1)
	for range 3 {
		start := time.Now()
		h, s := archive.NewHashWriter(nil), archive.NewSniffer()
		w := io.MultiWriter(h, s)
		for left := size; left > 0; {
			chunk := buf
			if left < int64(len(chunk)) {
				chunk = chunk[:left]
			}
			for p := chunk; len(p) > 0; p = p[min(len(p), 32<<10):] {
				w.Write(p[:min(len(p), 32<<10)])
			}
			left -= int64(len(chunk))
		}
		_ = h.SHA256()
		best = min(best, time.Since(start))
	}
	return best
}

func printBounds(w io.Writer, bs []bound) {
	if len(bs) == 0 {
		return
	}
	fmt.Fprintln(w, "\nwhat the pipeline must do beyond the bare copy, and the most pipeline ÷ bare can then be:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, b := range bs {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", b.scenario, b.cause, b.figure)
	}
	tw.Flush()
}
