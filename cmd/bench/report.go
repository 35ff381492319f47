package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// machineInfo describes where the figures came from.
type machineInfo struct {
	cpus   int
	model  string
	memGiB float64
	load   string // load averages when the benchmark began
}

func machine() machineInfo {
	m := machineInfo{cpus: runtime.NumCPU(), model: "unknown CPU"}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.load = strings.Join(f[:3], " ")
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				m.memGiB = kb / (1 << 20)
			}
		}
	}
	return m
}

func (m machineInfo) String() string {
	return fmt.Sprintf("%d CPUs (%s), %.1f GiB RAM, %s %s/%s, loopback", m.cpus, m.model, m.memGiB, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// Targets.
const (
	smallRatioTarget  = 0.80
	smallCPUTarget    = 2.0  // all parts' CPU per media ÷ the bare copy's
	largeRatioTarget  = 0.90 // issue #14: large files streamed over TLS
	boundShareTarget  = 0.90
	peakRSSTarget     = 200 << 20
	redisGrowthTarget = 1.25 // peak at 10× the media ÷ peak at 1×
)

// report prints the figures and the targets.
func report(w io.Writer, m machineInfo, outcomes, sweep []outcome) {
	fmt.Fprintf(w, "\nmediasync benchmark: %s\nload average when it began: %s (other programs on the machine take CPU from every figure)\n\n", m, m.load)
	printFigures(w, outcomes)
	printRedisScripts(w, outcomes)
	if len(sweep) > 0 {
		fmt.Fprintln(w, "\nsmall media against worker concurrency (the plot):")
		printFigures(w, sweep)
	}
	fmt.Fprintln(w, "\nCPU seconds per 1000 media, by part (all of them share the machine's CPUs):")
	printCPU(w, append(append([]outcome(nil), outcomes...), sweep...))
	fmt.Fprintln(w, "\ntargets:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range checks(outcomes) {
		verdict := "MISS"
		if c.pass {
			verdict = "PASS"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.scenario, c.target, c.figure, verdict)
	}
	tw.Flush()
	printBounds(w, bounds(outcomes))
}

func printFigures(w io.Writer, outcomes []outcome) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tmedia\tMB\tconc\tmedia/s\tMB/s\tTwilio req/media\tworker CPU s/1k media\tworker peak RSS\tRedis peak\tPG rows/s\tPG xacts/media\tbare media/s\tbare MB/s\tpipeline÷bare\t")
	row := func(label string, conc int, p pipelineResult, bare []string) {
		c := strconv.Itoa(conc)
		if conc == 0 {
			c = "default"
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t%.2f\t%s\t%s\t%s\t%.0f\t%.2f\t%s\t\n",
			label, p.media, float64(p.bytes)/1e6, c, f1(p.mediaPerSec()), f1(p.mbPerSec()),
			ratioOf(float64(p.requests), float64(p.media)), cpuPer1k(p.cpu.parts["worker"], p.media), mib(p.peakRSS), mib(p.redisPeak),
			p.pgRowsPerSec(), p.pgXactsPerMedia(), strings.Join(bare, "\t"))
	}
	for _, o := range outcomes {
		bare := []string{"-", "-", "-"}
		if o.bare != nil {
			bare = []string{f1(o.bare.mediaPerSec()), f1(o.bare.mbPerSec()), fmt.Sprintf("%.2f", o.ratio())}
		}
		row(o.label(), o.sc.concurrency, o.pipe, bare)
		if o.export != nil {
			row(o.exportLabel(), o.sc.concurrency, *o.export, []string{"-", "-", "-"})
		}
	}
	tw.Flush()
}

// cpuParts in the order printed.
var partNames = []string{"worker", "postgres", "redis", "emulator", "s3", "bench"}

// printCPU prints the CPU seconds per 1000 media of each part, for the
// pipeline and the bare copy, and what the rest of the machine used.
func printCPU(w io.Writer, outcomes []outcome) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "scenario\tphase\t%s\tall\tothers on the machine\t\n", strings.Join(partNames, "\t"))
	row := func(label, phase string, u cpuUse, media int, elapsed time.Duration) {
		fmt.Fprintf(tw, "%s\t%s\t", label, phase)
		for _, name := range partNames {
			if d, ok := u.parts[name]; ok {
				fmt.Fprintf(tw, "%s\t", cpuPer1k(d, media))
			} else {
				fmt.Fprint(tw, "-\t")
			}
		}
		busy := ratioOf(u.others().Seconds(), elapsed.Seconds()*float64(runtime.NumCPU()))
		fmt.Fprintf(tw, "%s\t%.0f%% of the CPUs\t\n", cpuPer1k(u.total(), media), busy*100)
	}
	for _, o := range outcomes {
		row(o.label(), "pipeline", o.pipe.cpu, o.pipe.media, o.pipe.elapsed)
		if o.export != nil {
			row(o.label(), o.sc.export+" export", o.export.cpu, o.export.media, o.export.elapsed)
		}
		if o.bare != nil {
			row(o.label(), "bare", o.bare.cpu, o.bare.media, o.bare.elapsed)
		}
		if o.records != nil {
			row(o.label(), "bare records", o.records.cpu, o.records.media, o.records.elapsed)
		}
		if o.checked != nil {
			row(o.label(), "bare checked", o.checked.cpu, o.checked.media, o.checked.elapsed)
		}
	}
	tw.Flush()
}

func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func cpuPer1k(d time.Duration, media int) string {
	return fmt.Sprintf("%.2f", ratioOf(d.Seconds()*1000, float64(media)))
}

// tenths prints an inFlightProfile.
func tenths(p []float64) string {
	if len(p) == 0 {
		return ""
	}
	parts := make([]string, len(p))
	for i, v := range p {
		parts[i] = strconv.FormatFloat(v, 'f', 1, 64)
	}
	return "; in flight by tenth of the run: " + strings.Join(parts, " ")
}

func ratioOf(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// check is one target against its figure.
type check struct {
	scenario, target, figure string
	pass                     bool
}

// checks holds each kind's outcomes to its targets, then every outcome to
// "no failed media".
func checks(outcomes []outcome) []check {
	var out []check
	for _, k := range scenarioKinds {
		var mine []outcome
		for _, o := range outcomes {
			if o.sc.kind == k.name {
				mine = append(mine, o)
			}
		}
		if len(mine) > 0 && k.checks != nil {
			out = append(out, k.checks(mine)...)
		}
	}
	for _, o := range outcomes {
		if o.pipe.failed > 0 {
			out = append(out, check{o.sc.name, "no failed media", strconv.Itoa(o.pipe.failed) + " failed", false})
		}
	}
	return out
}

// ratioChecks holds pipeline ÷ bare to a target.
func ratioChecks(target float64, unit string) func([]outcome) []check {
	return func(outcomes []outcome) []check {
		var out []check
		for _, o := range outcomes {
			if o.bare == nil {
				continue
			}
			pipe, bare := o.pipe.mediaPerSec(), o.bare.mediaPerSec()
			if unit == "MB/s" {
				pipe, bare = o.pipe.mbPerSec(), o.bare.mbPerSec()
			}
			out = append(out, check{o.sc.name, fmt.Sprintf("pipeline ÷ bare ≥ %.2f", target),
				fmt.Sprintf("%.2f (%s vs %s %s)", o.ratio(), f1(pipe), f1(bare), unit),
				o.ratio() >= target})
		}
		return out
	}
}

// smallChecks holds small media to pipeline ÷ bare and to the CPU per
// media of all parts against twice the bare copy's; then, as figures
// beside them, both against the bare copy that also stores each message's
// record (issue #17 came after these targets: the bare copy they were set
// against moves media only).
func smallChecks(outcomes []outcome) []check {
	out := ratioChecks(smallRatioTarget, "media/s")(outcomes)
	cpuCheck := func(o outcome, bare *bareResult, target string) check {
		pipe, yard := perMedia(o.pipe.cpu.total(), o.pipe.media), perMedia(bare.cpu.total(), bare.media)
		r := ratioOf(pipe, yard)
		return check{o.sc.name, target, fmt.Sprintf("%.2f× (%.2f vs %.2f CPU ms per media)", r, pipe, yard), r <= smallCPUTarget}
	}
	for _, o := range outcomes {
		if o.bare == nil {
			continue
		}
		out = append(out, cpuCheck(o, o.bare, fmt.Sprintf("CPU per media, all parts ≤ %.0f× the bare copy's", smallCPUTarget)))
		if w := o.withRecords(); w != nil {
			r := ratioOf(o.pipe.mediaPerSec(), w.mediaPerSec())
			out = append(out,
				check{o.sc.name, fmt.Sprintf("pipeline ÷ bare with records ≥ %.2f", smallRatioTarget),
					fmt.Sprintf("%.2f (%s vs %s media/s)", r, f1(o.pipe.mediaPerSec()), f1(w.mediaPerSec())), r >= smallRatioTarget},
				cpuCheck(o, w, fmt.Sprintf("CPU per media, all parts ≤ %.0f× the bare copy's with records", smallCPUTarget)))
		}
	}
	return out
}

func perMedia(d time.Duration, media int) float64 { return ratioOf(d.Seconds()*1000, float64(media)) }

func largeChecks(outcomes []outcome) []check {
	out := ratioChecks(largeRatioTarget, "MB/s")(outcomes)
	for _, o := range outcomes {
		out = append(out, check{o.sc.name, fmt.Sprintf("worker peak RSS < %d MiB at %d-way, %d MiB files", peakRSSTarget>>20, o.sc.concurrency, o.sc.largeFiles>>20),
			mib(o.pipe.peakRSS), o.pipe.peakRSS < peakRSSTarget})
		// Over TLS the downloads stream into S3; over plain http (-s3-http)
		// they go through the spool, which this shows too.
		out = append(out, check{o.sc.name, "no spool file written (downloads streamed into S3 over TLS)",
			fmt.Sprintf("%d spool files", o.pipe.spoolFiles), o.pipe.spoolFiles == 0})
	}
	return out
}

// conversationsChecks holds the conversations runs to the large files'
// targets (pipeline ÷ bare, peak RSS, no spool over TLS) and checks that
// the worker's peak RSS does not follow file size: the run of ten times
// larger files peaks at most 1.5 times as high.
func conversationsChecks(outcomes []outcome) []check {
	out := ratioChecks(largeRatioTarget, "MB/s")(outcomes)
	for _, o := range outcomes {
		out = append(out, check{o.sc.name, fmt.Sprintf("worker peak RSS < %d MiB at %d-way, %s files", peakRSSTarget>>20, o.sc.concurrency, sizeName(o.sc.convFiles)),
			mib(o.pipe.peakRSS), o.pipe.peakRSS < peakRSSTarget})
		out = append(out, check{o.sc.name, "no spool file written (downloads streamed into S3 over TLS)",
			fmt.Sprintf("%d spool files", o.pipe.spoolFiles), o.pipe.spoolFiles == 0})
	}
	if len(outcomes) == 2 {
		small, large := outcomes[0].pipe.peakRSS, outcomes[1].pipe.peakRSS
		out = append(out, check{"conversations", "peak RSS does not follow file size (×10 files: ≤ ×1.5 RSS)",
			fmt.Sprintf("%s at %s → %s at %s files", mib(small), sizeName(outcomes[0].sc.convFiles), mib(large), sizeName(outcomes[1].sc.convFiles)),
			small > 0 && float64(large) <= 1.5*float64(small)})
	}
	return out
}

// twilioChecks holds the Twilio-shaped run to the limit's bound. The
// emulator admits twilioMaxInFlight requests at once, each taking
// twilioLatency: that is the most requests per second, and the pipeline's
// requests per media turn it into media per second. Refused (429)
// requests occupy no slot.
func twilioChecks(outcomes []outcome) []check {
	var out []check
	for _, o := range outcomes {
		p := o.pipe
		admitted := float64(p.requests - p.rateLimited)
		perMedia := ratioOf(admitted, float64(p.media))
		limit := float64(o.sc.twilioInFlight) / o.sc.latency.Seconds()
		bound := ratioOf(limit, perMedia)
		share := ratioOf(p.mediaPerSec(), bound)
		// What the machine's CPUs allow, at the CPU all parts spent per
		// media: when it is below the limit's bound, the CPUs, not
		// Twilio, bound the run.
		cpuBound := ratioOf(float64(runtime.NumCPU()), p.cpu.total().Seconds()/float64(max(p.media, 1)))
		out = append(out, check{o.sc.name, fmt.Sprintf("≥ %.0f%% of the limit's bound, no failed media", boundShareTarget*100),
			fmt.Sprintf("%.0f%% (%s of %s media/s = %.0f req/s ÷ %.2f req/media; the CPUs' bound: %.0f media/s); %d failed; %d × 429; peak %d in flight, mean %.1f, each held %.1f ms by the emulator (latency %s)",
				share*100, f1(p.mediaPerSec()), f1(bound), limit, perMedia, cpuBound,
				p.failed, p.rateLimited, p.peakInFlight,
				// Mean in flight below the limit: the client left slots
				// idle. Each request held past the latency: the
				// emulator, short of CPU, answered late.
				ratioOf(p.inFlightSeconds, p.elapsed.Seconds()), 1000*ratioOf(p.inFlightSeconds, admitted), o.sc.latency) +
				tenths(p.inFlightTenths),
			share >= boundShareTarget && p.failed == 0})
	}
	return out
}

// exportChecks holds an export to what a reviewer relies on (every
// archived media in the package, re-verified) and to the worker's memory
// bound; its media/s is a figure, with no target.
func exportChecks(outcomes []outcome) []check {
	var out []check
	for _, o := range outcomes {
		e := o.export
		if e == nil {
			continue
		}
		out = append(out,
			check{o.sc.name, fmt.Sprintf("%s export holds every archived media, re-verified", o.sc.export),
				fmt.Sprintf("%d of %d media (%s media/s, %s MB/s); %d failed", e.media, o.pipe.media, f1(e.mediaPerSec()), f1(e.mbPerSec()), e.failed),
				e.media == o.pipe.media && e.failed == 0},
			check{o.sc.name, fmt.Sprintf("%s export: worker peak RSS < %d MiB", o.sc.export, peakRSSTarget>>20),
				fmt.Sprintf("%s for %d media", mib(e.peakRSS), e.media), e.peakRSS < peakRSSTarget})
	}
	return out
}

// deleteChecks holds a --delete run to deleting from Twilio every media
// it archived.
func deleteChecks(outcomes []outcome) []check {
	var out []check
	for _, o := range outcomes {
		out = append(out, check{o.sc.name, "deletes from Twilio every media it archived",
			fmt.Sprintf("%d of %d media deleted; %d failed", o.pipe.deleted, o.pipe.media, o.pipe.failed),
			o.pipe.deleted == o.pipe.media && o.pipe.failed == 0})
	}
	return out
}

// redisChecks compares the peak Redis memory of the smallest and the
// largest run.
func redisChecks(outcomes []outcome) []check {
	if len(outcomes) < 2 {
		return nil
	}
	a, b := outcomes[0], outcomes[len(outcomes)-1]
	growth := ratioOf(float64(b.pipe.redisPeak), float64(a.pipe.redisPeak))
	return []check{{"redis", fmt.Sprintf("peak Redis memory flat as the run grows %d× (≤ ×%.2f)", b.sc.media/max(a.sc.media, 1), redisGrowthTarget),
		fmt.Sprintf("%s at %d media → %s at %d media (×%.2f)", mib(a.pipe.redisPeak), a.pipe.media, mib(b.pipe.redisPeak), b.pipe.media, growth),
		growth <= redisGrowthTarget}}
}
