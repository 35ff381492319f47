// Package metrics defines every Prometheus metric the worker serves on
// HTTP_ADDR's /metrics, in one place. The packages that count (jobs,
// twilio, the worker's wiring) see only small interfaces of their own that
// *Metrics satisfies, so none of them imports Prometheus or keeps a global.
//
// Conventions: names are mediasync_*, counters end in _total, durations are
// seconds, and no label holds a SID, a phone number or anything else that
// grows with the data: labels are sources, results, APIs, status codes,
// task types, queues and states.
package metrics

import (
	"context"
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mediasync/mediasync/internal/version"
)

// Media results: what a run did with one media (mediasync_media_total's
// result label).
const (
	ResultArchived = "archived" // copied into the archive by this run
	ResultReused   = "reused"   // already in the archive (or already deleted): nothing copied
	ResultDeleted  = "deleted"  // deleted from Twilio after its copy was proven
	ResultGone     = "gone"     // Twilio no longer had it
	ResultFailed   = "failed"   // failed for the run, with its reason recorded
	ResultHeld     = "held"     // archived, its delete stopped by a legal hold
	ResultSuspect  = "suspect"  // the download was not plausibly the media: kept aside, not archived
)

// MediaResults are every result label, so each series exists (at 0) from
// the first scrape and rate() and alerts see the first increase.
var MediaResults = []string{ResultArchived, ResultReused, ResultDeleted, ResultGone, ResultFailed, ResultHeld, ResultSuspect}

// Sources are the source label's values known at start.
var Sources = []string{"messaging", "conversations"}

// Verify results (mediasync_verify_total's result label).
const (
	VerifyOK       = "ok"       // size and SHA-256 match the catalog
	VerifyMismatch = "mismatch" // the object differs from the catalog
	VerifyMissing  = "missing"  // no object where the catalog says
	VerifyError    = "error"    // could not be read (retried later)
)

// Metrics holds the worker's metrics and the registry that serves them.
type Metrics struct {
	reg *prometheus.Registry

	media     *prometheus.CounterVec
	bytes     *prometheus.CounterVec
	twilio    *prometheus.CounterVec
	limitWait prometheus.Histogram
	taskTime  *prometheus.HistogramVec
	verify    *prometheus.CounterVec
}

// New returns the metrics, registered with the Go runtime's and the
// process's collectors and mediasync_build_info.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		media: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mediasync_media_total",
			Help: "Media handled by runs, by source and result (archived, reused, deleted, gone, failed, held, suspect).",
		}, []string{"source", "result"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mediasync_archived_bytes_total",
			Help: "Bytes of media copied into the archive, by source.",
		}, []string{"source"}),
		twilio: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mediasync_twilio_requests_total",
			Help: "HTTP requests sent to Twilio (every attempt, retries included), by API and HTTP status code (\"error\": no response).",
		}, []string{"api", "code"}),
		limitWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mediasync_ratelimit_wait_seconds",
			Help:    "Time a Twilio request waited for the account-wide limiter (a slot, the rate, a fleet back-off after a 429).",
			Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
		taskTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mediasync_task_duration_seconds",
			Help:    "Time a worker spent handling a task, by task type, whatever its outcome.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600},
		}, []string{"type"}),
		verify: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mediasync_verify_total",
			Help: "Archived objects re-read and checked against the catalog, by result (ok, mismatch, missing, error).",
		}, []string{"result"}),
	}
	for _, s := range Sources {
		for _, r := range MediaResults {
			m.media.WithLabelValues(s, r)
		}
		m.bytes.WithLabelValues(s)
	}
	for _, r := range []string{VerifyOK, VerifyMismatch, VerifyMissing, VerifyError} {
		m.verify.WithLabelValues(r)
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "mediasync_build_info",
		Help: "Always 1: the version of the running worker (--version) and the Go it was built with.",
	}, []string{"version", "goversion"})
	build.WithLabelValues(version.String(), runtime.Version()).Set(1)
	m.reg.MustRegister(m.media, m.bytes, m.twilio, m.limitWait, m.taskTime, m.verify, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// scrapeErrors counts the scrapes whose figures collector could not read.
// Each collector reports its own count in the scrape that missed: a
// counter of its own registered beside it would be gathered concurrently
// and could be read before the miss is counted.
func scrapeErrors(collector string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{
		Name:        "mediasync_scrape_errors_total",
		Help:        "Scrapes whose figures from Postgres or Redis could not be read, by what was read (catalog, queue).",
		ConstLabels: prometheus.Labels{"collector": collector},
	})
}

// Register adds collectors read at scrape time (Postgres, Redis figures).
func (m *Metrics) Register(cs ...prometheus.Collector) { m.reg.MustRegister(cs...) }

// Handler serves the metrics in Prometheus's text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Media counts n media of a source with a result (jobs.Metrics).
func (m *Metrics) Media(source, result string, n int) {
	if n > 0 {
		m.media.WithLabelValues(source, result).Add(float64(n))
	}
}

// ArchivedBytes counts bytes copied into the archive (jobs.Metrics).
func (m *Metrics) ArchivedBytes(source string, n int64) {
	if n > 0 {
		m.bytes.WithLabelValues(source).Add(float64(n))
	}
}

// TwilioRequest counts one HTTP request to Twilio; status 0 is a request
// that got no response (twilio.RequestObserver).
func (m *Metrics) TwilioRequest(api string, status int) {
	code := "error"
	if status > 0 {
		code = strconv.Itoa(status)
	}
	m.twilio.WithLabelValues(api, code).Inc()
}

// Verified counts one archived object re-read by verify.
func (m *Metrics) Verified(result string) { m.verify.WithLabelValues(result).Inc() }

// Limiter is the account-wide limiter as the Twilio client calls it
// (twilio.Limiter).
type Limiter interface {
	Acquire(ctx context.Context) (release func(), err error)
}

// TimeLimiter returns l, timing each Acquire into
// mediasync_ratelimit_wait_seconds, refused or not.
func (m *Metrics) TimeLimiter(l Limiter) Limiter { return timedLimiter{l: l, h: m.limitWait} }

type timedLimiter struct {
	l Limiter
	h prometheus.Histogram
}

func (t timedLimiter) Acquire(ctx context.Context) (func(), error) {
	start := time.Now()
	release, err := t.l.Acquire(ctx)
	t.h.Observe(time.Since(start).Seconds())
	return release, err
}

// TaskDuration is an asynq middleware that times each task into
// mediasync_task_duration_seconds by its type.
func (m *Metrics) TaskDuration(next asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		start := time.Now()
		defer func() { m.taskTime.WithLabelValues(t.Type()).Observe(time.Since(start).Seconds()) }()
		return next.ProcessTask(ctx, t)
	})
}
