package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// firstDay is where every generated dataset starts; runs cover whole UTC
// days from it.
var firstDay = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// scenario is one shape of work: a dataset, a deployment and a run.
type scenario struct {
	kind  string // its scenarioKind
	name  string
	about string

	// The dataset: media wanted, in messages of minMedia..maxMedia media
	// of minSize..maxSize bytes (log-uniform), with smsShare messages
	// without media.
	media              int
	minMedia, maxMedia int
	minSize, maxSize   int64
	smsShare           float64

	// largeFiles, when positive, is the size of every media instead: see
	// large_media.go.
	largeFiles int64
	// convFiles, when positive, makes the data Conversations media of
	// this size each, in MCS, archived by a --source conversations run
	// (issue #15); media is then about how many.
	convFiles int64

	concurrency    int
	twilioInFlight int
	poolMaxConns   int
	// faults are set on the emulator once the data is in, before the run:
	// the Twilio-shaped scenario's latency and limit.
	faults map[string]any
	// latency is what the emulator takes per API request (faults), for the
	// limit's bound: twilioInFlight ÷ latency requests per second.
	latency time.Duration
	dryRun  bool
	// delete runs the backfill with --delete: every media is deleted from
	// Twilio once its copy is proven. Nothing is left for a bare copy.
	delete bool
	// worm archives into a bucket with S3 Object Lock, under retention
	// (deploy); its bare copy's bucket has Object Lock too.
	worm bool
	bare bool
	// bareRecords has the bare copy also store each message's record as
	// its own object, as issue #17 has the pipeline do, timed apart.
	bareRecords bool
	// bareChecked copies the media a third time, timed apart, with the
	// checks invariant 1 asks before any delete (copyChecked).
	bareChecked bool
	// export, when set, is the format of an `enqueue export` of
	// everything the run archived, timed after it (issue #8).
	export string
}

// scenarioSizes are the media counts of the default and -quick runs.
type scenarioSizes struct {
	small, mix, large, twilio, redis, export int
	largeSize                                int64
	largeConcurrency                         int
	conv                                     int   // Conversations media of each conversations run
	convSize                                 int64 // the largest conversations run's file size
}

var (
	defaultSizes = scenarioSizes{small: 6000, mix: 2000, large: 32, twilio: 4000, redis: 10000, export: 10000,
		largeSize: 100 << 20, largeConcurrency: 32, conv: 16, convSize: 150 << 20}
	quickSizes = scenarioSizes{small: 300, mix: 150, large: 4, twilio: 400, redis: 1000, export: 300,
		largeSize: 50 << 20, largeConcurrency: 4, conv: 4, convSize: 50 << 20}
)

// Twilio-shaped limits: what the Twilio scenario's emulator allows.
const (
	twilioLatency     = 100 * time.Millisecond
	twilioMaxInFlight = 100
	// The scenario of a worker with default settings but the account's
	// limit (issue #14).
	twilioDefaultsLatency  = 50 * time.Millisecond
	twilioDefaultsInFlight = 16
)

func smallScenario(n, concurrency int) scenario {
	return scenario{
		name: "small", about: "many small media: 50 KB each, 1-3 per message",
		media: n, minMedia: 1, maxMedia: 3, minSize: 50_000, maxSize: 50_000,
		concurrency: concurrency, twilioInFlight: max(20, concurrency), bare: true, bareRecords: true, bareChecked: true,
	}
}

// scenarioKind is one entry of the benchmark's menu: what -scenarios
// names, the runs it makes at the sizes asked for, and the targets its
// outcomes are held to.
//
// Adding a scenario is adding an entry here.
type scenarioKind struct {
	name   string
	runs   func(z scenarioSizes, o kindOptions) []scenario
	checks func(outcomes []outcome) []check // the outcomes of this kind's runs
}

// kindOptions are the flags some kinds read.
type kindOptions struct {
	redisArchive bool
}

// scenarioKinds is the menu, in the order the scenarios run by default.
var scenarioKinds = []scenarioKind{
	{name: "small", runs: func(z scenarioSizes, _ kindOptions) []scenario {
		return []scenario{smallScenario(z.small, 16)}
	}, checks: smallChecks},
	// The small media into a WORM archive, as deployments that answer for
	// the only copy run it: S3 Object Lock, retention on every object, S3
	// legal holds kept in line with the holds (none placed here).
	{name: "worm", runs: func(z scenarioSizes, _ kindOptions) []scenario {
		sc := smallScenario(z.small, 16)
		sc.name, sc.about, sc.worm = "small-worm", "the small media into a bucket with S3 Object Lock, GOVERNANCE retention", true
		sc.bareRecords, sc.bareChecked = false, false
		return []scenario{sc}
	}},
	// The small media archived and deleted from Twilio (--delete), as a
	// nightly retention run does: each media's copy proven, its delete
	// claimed and leased, the DELETE sent and recorded. No bare copy (the
	// media are gone); compare with small's media/s.
	{name: "delete", runs: func(z scenarioSizes, _ kindOptions) []scenario {
		sc := smallScenario(z.small, 16)
		sc.name, sc.about, sc.delete = "small-delete", "the small media archived, then deleted from Twilio (--delete)", true
		sc.bare, sc.bareRecords, sc.bareChecked = false, false, false
		return []scenario{sc}
	}, checks: deleteChecks},
	{name: "mix", runs: func(z scenarioSizes, _ kindOptions) []scenario {
		return []scenario{{
			name: "mix", about: "the MMS mix: 1 KiB-5 MiB log-uniform, 1-10 per message (5 MiB at most), 20% SMS",
			media: z.mix, minMedia: 1, maxMedia: 10, minSize: 1 << 10, maxSize: 5 << 20, smsShare: 0.2,
			concurrency: 16, twilioInFlight: 20, bare: true,
		}}
	}},
	{name: "large", runs: func(z scenarioSizes, _ kindOptions) []scenario {
		return []scenario{{
			name:  "large",
			about: fmt.Sprintf("large files: %d MiB each (Conversations-sized)", z.largeSize>>20),
			media: z.large, largeFiles: z.largeSize,
			concurrency: z.largeConcurrency, twilioInFlight: max(20, z.largeConcurrency), bare: true, bareChecked: true,
		}}
	}, checks: largeChecks},
	{name: "twilio", runs: func(z scenarioSizes, _ kindOptions) []scenario {
		return []scenario{{
			name: "twilio", about: fmt.Sprintf("Twilio-shaped: %s per API request, %d in flight allowed; 10 KB media, 1-3 per message",
				twilioLatency, twilioMaxInFlight),
			media: z.twilio, minMedia: 1, maxMedia: 3, minSize: 10_000, maxSize: 10_000,
			// Tasks spend most of their time waiting on Twilio: a
			// Postgres connection each would pass max_connections.
			concurrency: 160, twilioInFlight: twilioMaxInFlight, poolMaxConns: 32,
			faults:  map[string]any{"latency": twilioLatency.String(), "max_in_flight": twilioMaxInFlight},
			latency: twilioLatency,
			bare:    true,
		}, {
			// As a new user runs it (issue #14): only the account's limit
			// set, every other setting the worker's default.
			name: "twilio-16", about: fmt.Sprintf("Twilio-shaped, defaults but TWILIO_MAX_CONCURRENCY=%d: %s per API request; 10 KB media, 1-3 per message",
				twilioDefaultsInFlight, twilioDefaultsLatency),
			media: z.twilio, minMedia: 1, maxMedia: 3, minSize: 10_000, maxSize: 10_000,
			twilioInFlight: twilioDefaultsInFlight,
			faults:         map[string]any{"latency": twilioDefaultsLatency.String(), "max_in_flight": twilioDefaultsInFlight},
			latency:        twilioDefaultsLatency,
		}}
	}, checks: twilioChecks},
	// Two runs, one of ten times the media of the other: dry runs (listing
	// only) unless -redis-archive, since archiving 100 000 media takes
	// about ten minutes on two cores.
	{name: "redis", runs: func(z scenarioSizes, o kindOptions) []scenario {
		var out []scenario
		for _, n := range []int{z.redis, 10 * z.redis} {
			out = append(out, scenario{
				name: "redis-" + strconv.Itoa(n), about: "Redis memory against run size: 1 KB media, 10 per message",
				media: n, minMedia: 10, maxMedia: 10, minSize: 1000, maxSize: 1000,
				concurrency: 16, twilioInFlight: 20, dryRun: !o.redisArchive,
			})
		}
		return out
	}, checks: redisChecks},
	// Issue #15: Conversations media through MCS (temporary URLs, no
	// credentials), by the conversations source; two runs of files a
	// tenth and all of convSize (150 MB, Twilio's limit, by default), so
	// that a peak RSS following file size shows.
	{name: "conversations", runs: func(z scenarioSizes, _ kindOptions) []scenario {
		var out []scenario
		for _, size := range []int64{z.convSize / 10, z.convSize} {
			out = append(out, scenario{
				// Lower case: the name is in its bucket's.
				name: "conversations-" + strings.ToLower(sizeName(size)), about: "Conversations media in MCS: " + sizeName(size) + " each, by --source conversations",
				media: z.conv, convFiles: size,
				concurrency: z.largeConcurrency, twilioInFlight: max(20, z.largeConcurrency), bare: true, bareChecked: true,
			})
		}
		return out
	}, checks: conversationsChecks},
	// Issue #8: archive the media, then export all of them as one zip
	// streamed into S3, every object re-read and re-verified.
	{name: "export", runs: func(z scenarioSizes, _ kindOptions) []scenario {
		return []scenario{{
			name: "export", about: "zip export of everything archived: 50 KB media, 1-3 per message",
			media: z.export, minMedia: 1, maxMedia: 3, minSize: 50_000, maxSize: 50_000,
			concurrency: 16, twilioInFlight: 20, export: "zip",
		}}
	}, checks: exportChecks},
}

// kindNames lists the menu, for flags and errors.
func kindNames() string {
	names := make([]string, len(scenarioKinds))
	for i, k := range scenarioKinds {
		names[i] = k.name
	}
	return strings.Join(names, ", ")
}

// scenariosFor returns the runs of the named kinds at the given sizes.
func scenariosFor(names []string, z scenarioSizes, o kindOptions) ([]scenario, error) {
	var out []scenario
	for _, name := range names {
		i := slices.IndexFunc(scenarioKinds, func(k scenarioKind) bool { return k.name == name })
		if i < 0 {
			return nil, fmt.Errorf("-scenarios: unknown scenario %q (want %s)", name, kindNames())
		}
		for _, sc := range scenarioKinds[i].runs(z, o) {
			sc.kind = name
			out = append(out, sc)
		}
	}
	return out, nil
}

// messages is how many messages carry about s.media media.
func (s scenario) messages() int {
	perMessage := float64(s.minMedia+s.maxMedia) / 2 * (1 - s.smsShare)
	return max(1, int(float64(s.media)/perMessage+0.5))
}

// days is how many UTC days the dataset spans: a thousand messages a day
// (one page), so listing runs a few windows side by side.
func (s scenario) days() int {
	return min(max(1, s.messages()/1000), 30)
}

func (s scenario) emulatorFlags() []string {
	end := firstDay.AddDate(0, 0, s.days())
	if s.convFiles > 0 {
		// One media per message on average (0..1 per message, two
		// messages per conversation), every one of convFiles bytes.
		return []string{"-messages", "0", "-start", day(firstDay), "-end", day(end),
			"-conversations", strconv.Itoa(s.media), "-conversation-messages", "2", "-max-conversation-media", "1",
			"-large-media-size", strconv.FormatInt(s.convFiles, 10), "-large-media-share", "1"}
	}
	if s.largeFiles > 0 {
		return []string{"-messages", "0", "-start", day(firstDay), "-end", day(end)}
	}
	var log []string
	if s.latency > 0 {
		// For inFlightProfile: a log that wrapped would profile only the
		// run's end, so it holds every request of a -media run too.
		log = []string{"-request-log", strconv.Itoa(max(requestLogSize, 4*s.media))}
	}
	return append(log,
		"-messages", strconv.Itoa(s.messages()), "-start", day(firstDay), "-end", day(end),
		"-min-media", strconv.Itoa(s.minMedia), "-max-media", strconv.Itoa(s.maxMedia),
		"-min-media-size", strconv.FormatInt(s.minSize, 10), "-max-media-size", strconv.FormatInt(s.maxSize, 10),
		"-no-media-share", strconv.FormatFloat(s.smsShare, 'f', -1, 64),
	)
}

func day(t time.Time) string { return t.Format("2006-01-02") }

// outcome is what one scenario measured.
type outcome struct {
	sc   scenario
	pipe pipelineResult
	bare *bareResult
	// records is the bare copy's PUT of the message records (bareRecords),
	// with its media the run's, so that its rates are per media.
	records *bareResult
	// checked is the bare copy with invariant 1's checks (bareChecked).
	checked *bareResult
	export  *pipelineResult // the export of what pipe archived, when sc.export is set
}

// label names the outcome in tables.
func (o outcome) label() string {
	if o.sc.dryRun {
		return o.sc.name + " (dry run)"
	}
	return o.sc.name
}

// exportLabel names the outcome's export in tables.
func (o outcome) exportLabel() string { return o.sc.name + " (" + o.sc.export + " export)" }

// ratio is pipeline ÷ bare in media per second, or 0 without a bare copy.
func (o outcome) ratio() float64 {
	if o.bare == nil || o.bare.mediaPerSec() == 0 {
		return 0
	}
	return o.pipe.mediaPerSec() / o.bare.mediaPerSec()
}

// runScenario runs the pipeline on the scenario's data, then the bare copy
// on the same media, and cleans up.
func (b *bench) runScenario(ctx context.Context, sc scenario) (outcome, error) {
	out := outcome{sc: sc}
	b.logf("%s: %s", sc.name, sc.about)
	emu, err := b.lab.startEmulator(ctx, sc.name, sc.emulatorFlags()...)
	if err != nil {
		return out, err
	}
	defer emu.stop()
	apiURL := emu.apiURL
	if sc.largeFiles > 0 {
		lm, err := addLargeMedia(ctx, emu, sc.media, sc.largeFiles, firstDay.Add(12*time.Hour))
		if err != nil {
			return out, fmt.Errorf("large media: %w", err)
		}
		defer lm.close()
		apiURL = lm.proxyURL
	}
	d, err := b.lab.deploy(ctx, sc.name, emu, apiURL, sc.worm)
	if err != nil {
		return out, err
	}
	defer d.close()
	if sc.faults != nil {
		if err := emu.setFaults(ctx, sc.faults); err != nil {
			return out, err
		}
	}

	syncDisks()
	spec := runSpec{
		since: day(firstDay), until: day(firstDay.AddDate(0, 0, sc.days())),
		workers: 1, concurrency: sc.concurrency, twilioInFlight: sc.twilioInFlight, poolMaxConns: sc.poolMaxConns,
		dryRun: sc.dryRun, delete: sc.delete, timeout: b.runTimeout, extraEnv: b.workerEnv,
		profileInFlight: sc.latency > 0,
	}
	if sc.convFiles > 0 {
		spec.source = "conversations"
	}
	if out.pipe, err = d.run(ctx, spec); err != nil {
		return out, fmt.Errorf("%s: pipeline: %w", sc.name, err)
	}
	b.logf("%s: pipeline: %d media, %.1f MB in %s: %.1f media/s; %d spool files written",
		sc.name, out.pipe.media, float64(out.pipe.bytes)/1e6, out.pipe.elapsed.Round(time.Millisecond), out.pipe.mediaPerSec(), out.pipe.spoolFiles)
	if sc.export != "" {
		// Fresh workers, so that their peak RSS is the export's own.
		exp := spec
		exp.export = sc.export
		res, err := d.run(ctx, exp)
		if err != nil {
			return out, fmt.Errorf("%s: %s export: %w", sc.name, sc.export, err)
		}
		out.export = &res
		b.logf("%s: %s export: %d media, %.1f MB in %s: %.1f media/s",
			sc.name, sc.export, res.media, float64(res.bytes)/1e6, res.elapsed.Round(time.Millisecond), res.mediaPerSec())
	}
	if !sc.bare {
		return out, nil
	}

	refs, err := d.archivedMedia(ctx)
	if err != nil {
		return out, err
	}
	bucket := d.bucket + "-bare"
	if err := b.lab.newBucket(ctx, bucket, sc.worm); err != nil {
		return out, err
	}
	defer b.lab.dropBucket(bucket)
	syncDisks()
	bareConcurrency := sc.concurrency
	if sc.faults != nil {
		bareConcurrency = min(bareConcurrency, twilioMaxInFlight)
	}
	copier := newBareCopier(apiURL, emu.account, emu.token, b.lab.s3URL, bucket, bareConcurrency, b.lab.s3Transport())
	parts := cpuParts{"emulator": {emu.proc.Pid()}, "s3": {b.lab.s3.Pid()}, "bench": {os.Getpid()}}
	bare, err := copyAll(ctx, refs, bareConcurrency, parts, copier.copy)
	if err != nil {
		return out, err
	}
	out.bare = &bare
	b.logf("%s: bare copy: %d media in %s: %.1f media/s", sc.name, bare.media, bare.elapsed.Round(time.Millisecond), bare.mediaPerSec())
	if sc.bareChecked {
		// Into a bucket of its own, as the bare copy's: every PUT makes a
		// new object, none replaces one.
		checkedCopier := *copier
		checkedCopier.bucket = d.bucket + "-checked"
		if err := b.lab.newBucket(ctx, checkedCopier.bucket, sc.worm); err != nil {
			return out, err
		}
		defer b.lab.dropBucket(checkedCopier.bucket)
		syncDisks()
		checked, err := copyAll(ctx, refs, bareConcurrency, parts, checkedCopier.copyChecked)
		if err != nil {
			return out, err
		}
		out.checked = &checked
		b.logf("%s: bare copy with the checks: %d media in %s: %.1f media/s", sc.name, checked.media, checked.elapsed.Round(time.Millisecond), checked.mediaPerSec())
	}
	if !sc.bareRecords {
		return out, nil
	}
	recs, err := d.archivedRecords(ctx)
	if err != nil {
		return out, err
	}
	syncDisks()
	records, err := copier.putRecords(ctx, recs, bare.media, bareConcurrency, parts)
	if err != nil {
		return out, err
	}
	out.records = &records
	b.logf("%s: bare copy of the message records: %d records in %s", sc.name, len(recs), records.elapsed.Round(time.Millisecond))
	return out, nil
}

// withRecords is the bare copy of the media and of the message records
// together: the two phases' times and CPU added (each saturates the same
// CPUs, so run together they would take about their sum).
func (o outcome) withRecords() *bareResult { return o.plusRecords(o.bare) }

// checkedWithRecords is withRecords with the checked bare copy.
func (o outcome) checkedWithRecords() *bareResult { return o.plusRecords(o.checked) }

func (o outcome) plusRecords(copy *bareResult) *bareResult {
	if copy == nil || o.records == nil {
		return nil
	}
	sum := bareResult{media: copy.media, bytes: copy.bytes + o.records.bytes, elapsed: copy.elapsed + o.records.elapsed,
		cpu: cpuUse{parts: map[string]time.Duration{}, machine: copy.cpu.machine + o.records.cpu.machine}}
	for _, u := range []cpuUse{copy.cpu, o.records.cpu} {
		for name, d := range u.parts {
			sum.cpu.parts[name] += d
		}
	}
	return &sum
}

// sizeName writes a file size in whole MiB, or KiB below one MiB.
func sizeName(n int64) string {
	if n < 1<<20 {
		return strconv.FormatInt(n>>10, 10) + "KiB"
	}
	return strconv.FormatInt(n>>20, 10) + "MiB"
}
