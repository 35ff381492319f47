package main

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// bound is what the pipeline must do beyond the bare copy in a scenario,
// measured as a copy that does only that, and the most pipeline ÷ bare can
// then be.
type bound struct {
	scenario, cause, figure string
}

// bounds reads, from this run's own figures, the ceiling that what the
// pipeline must do beyond a bare copy puts on pipeline ÷ bare, each as a
// bare copy that does that too, timed apart:
//   - small: storing each message's record (issue #17): the bare copy,
//     then its records (bare records);
//   - SHA-256 and the Sniffer over every byte and the hash sent as the
//     trailer S3 verifies (invariant 1: no delete without them): the
//     checked bare copy (bare checked);
//   - both, where a scenario has both: the checked bare copy, then the
//     records.
//
// Its media/s over the bare copy's is the most a pipeline that does the
// same reaches.
func bounds(outcomes []outcome) []bound {
	var out []bound
	for _, o := range outcomes {
		if o.bare == nil {
			continue
		}
		if w := o.withRecords(); w != nil {
			out = append(out, bound{o.sc.name, "storing each message's record (issue #17)",
				fmt.Sprintf("the bare copy, then its records: %s media/s, %.2f of the bare copy's %s: the most a pipeline that stores them reaches",
					f1(w.mediaPerSec()), ratioOf(w.mediaPerSec(), o.bare.mediaPerSec()), f1(o.bare.mediaPerSec()))})
		}
		if c := o.checked; c != nil {
			out = append(out, bound{o.sc.name, "SHA-256 and the Sniffer over every byte, the hash verified by S3 (invariant 1)",
				fmt.Sprintf("the bare copy with them: %s MB/s, %.2f of the bare copy's %s: the most a pipeline that checks reaches",
					f1(c.mbPerSec()), ratioOf(c.mbPerSec(), o.bare.mbPerSec()), f1(o.bare.mbPerSec()))})
		}
		if w := o.checkedWithRecords(); w != nil {
			out = append(out, bound{o.sc.name, "both",
				fmt.Sprintf("the checked bare copy, then the records: %s media/s, %.2f of the bare copy's %s: the most a pipeline that does both reaches",
					f1(w.mediaPerSec()), ratioOf(w.mediaPerSec(), o.bare.mediaPerSec()), f1(o.bare.mediaPerSec()))})
		}
	}
	return out
}

func printBounds(w io.Writer, bs []bound) {
	if len(bs) == 0 {
		return
	}
	fmt.Fprintln(w, "\nwhat the pipeline must do beyond the bare copy, as a bare copy that does it too, and the most pipeline ÷ bare can then be:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, b := range bs {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", b.scenario, b.cause, b.figure)
	}
	tw.Flush()
}
