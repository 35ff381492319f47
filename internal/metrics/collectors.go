package metrics

import (
	"context"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/retention"
)

// scrapeTimeout bounds what one scrape waits on Postgres or Redis:
// Prometheus's default scrape timeout is 10 s.
const scrapeTimeout = 5 * time.Second

// Gauger reads the catalog's figures for a scrape, in O(1) queries
// (catalog.Catalog.Gauges).
type Gauger interface {
	Gauges(ctx context.Context, account string) (catalog.Gauges, error)
}

// CatalogCollector reports, at each scrape, the policies' distance from
// Twilio's purge (window: TWILIO_RETENTION_DAYS) and the runs by kind and
// state. It reads Postgres, so every worker reports the same figures:
// aggregate them with max(), not sum().
func (m *Metrics) CatalogCollector(g Gauger, account string, window retention.Window, now func() time.Time) prometheus.Collector {
	return &catalogCollector{
		g: g, account: account, window: window, now: now, errs: scrapeErrors("catalog"),
		retention: prometheus.NewDesc("mediasync_twilio_retention_seconds",
			"How long Twilio keeps the account's messages and media (TWILIO_RETENTION_DAYS).", nil, nil),
		watermarkAge: prometheus.NewDesc("mediasync_policy_watermark_age_seconds",
			"Age of the policy's watermark: everything sent before it is archived.", []string{"policy"}, nil),
		oldestAge: prometheus.NewDesc("mediasync_policy_oldest_unarchived_age_seconds",
			"Age of the oldest media in the policy's scope not yet archived (0 if none). Twilio purges media older than mediasync_twilio_retention_seconds.",
			[]string{"policy"}, nil),
		purgeIn: prometheus.NewDesc("mediasync_policy_purge_in_seconds",
			"Time until Twilio purges the oldest media in the policy's scope not yet archived, negative once it has (absent if none).",
			[]string{"policy"}, nil),
		unarchived: prometheus.NewDesc("mediasync_policy_unarchived_media",
			"Media in the policy's scope known and not yet archived (pending, failed or suspect).", []string{"policy"}, nil),
		runs: prometheus.NewDesc("mediasync_runs",
			"Runs recorded in the catalog, by kind and state.", []string{"kind", "state"}, nil),
	}
}

type catalogCollector struct {
	g       Gauger
	account string
	window  retention.Window
	now     func() time.Time
	errs    prometheus.Counter

	retention, watermarkAge, oldestAge, purgeIn, unarchived, runs *prometheus.Desc
}

func (c *catalogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.retention
	ch <- c.purgeIn
	ch <- c.watermarkAge
	ch <- c.oldestAge
	ch <- c.unarchived
	ch <- c.runs
	c.errs.Describe(ch)
}

func (c *catalogCollector) Collect(ch chan<- prometheus.Metric) {
	defer c.errs.Collect(ch)
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	g, err := c.g.Gauges(ctx, c.account)
	if err != nil {
		// The rest of the scrape still serves; the counter says this
		// part is missing.
		c.errs.Inc()
		return
	}
	now := c.now()
	ch <- prometheus.MustNewConstMetric(c.retention, prometheus.GaugeValue, c.window.Duration().Seconds())
	for _, p := range g.Policies {
		oldest := 0.0
		if !p.OldestUnsaved.IsZero() {
			oldest = now.Sub(p.OldestUnsaved).Seconds()
			ch <- prometheus.MustNewConstMetric(c.purgeIn, prometheus.GaugeValue, c.window.PurgeAt(p.OldestUnsaved).Sub(now).Seconds(), p.Name)
		}
		ch <- prometheus.MustNewConstMetric(c.watermarkAge, prometheus.GaugeValue, now.Sub(p.Watermark).Seconds(), p.Name)
		ch <- prometheus.MustNewConstMetric(c.oldestAge, prometheus.GaugeValue, oldest, p.Name)
		ch <- prometheus.MustNewConstMetric(c.unarchived, prometheus.GaugeValue, float64(p.OldestUnsavedN), p.Name)
	}
	for _, r := range g.Runs {
		ch <- prometheus.MustNewConstMetric(c.runs, prometheus.GaugeValue, float64(r.N), r.Kind, string(r.State))
	}
}

// QueueInspector reads a queue's task counts (asynq.Inspector).
type QueueInspector interface {
	GetQueueInfo(queue string) (*asynq.QueueInfo, error)
}

// QueueCollector reports, at each scrape, the tasks of each queue by state
// and the queue's latency: one Redis script per queue, as asynq's own
// x/metrics collector does (that module has no release to pin, so this is
// its few lines over the same Inspector). Like the catalog's figures, every
// worker reports the same: aggregate with max().
func (m *Metrics) QueueCollector(in QueueInspector, queues ...string) prometheus.Collector {
	return &queueCollector{
		in: in, queues: queues, errs: scrapeErrors("queue"),
		tasks: prometheus.NewDesc("mediasync_queue_tasks",
			"Tasks in an Asynq queue, by state (pending, active, scheduled, retry, archived, completed, aggregating).",
			[]string{"queue", "state"}, nil),
		latency: prometheus.NewDesc("mediasync_queue_latency_seconds",
			"Age of the queue's oldest pending task.", []string{"queue"}, nil),
		paused: prometheus.NewDesc("mediasync_queue_paused",
			"1 if the queue is paused.", []string{"queue"}, nil),
	}
}

type queueCollector struct {
	in     QueueInspector
	queues []string
	errs   prometheus.Counter

	tasks, latency, paused *prometheus.Desc
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.tasks
	ch <- c.latency
	ch <- c.paused
	c.errs.Describe(ch)
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	defer c.errs.Collect(ch)
	for _, q := range c.queues {
		info, err := c.in.GetQueueInfo(q)
		if err != nil {
			// asynq reports a queue that has never held a task as not
			// found: it is empty.
			info = &asynq.QueueInfo{Queue: q}
			if !isQueueNotFound(err) {
				c.errs.Inc()
				continue
			}
		}
		for state, n := range map[string]int{
			"pending": info.Pending, "active": info.Active, "scheduled": info.Scheduled, "retry": info.Retry,
			"archived": info.Archived, "completed": info.Completed, "aggregating": info.Aggregating,
		} {
			ch <- prometheus.MustNewConstMetric(c.tasks, prometheus.GaugeValue, float64(n), q, state)
		}
		ch <- prometheus.MustNewConstMetric(c.latency, prometheus.GaugeValue, info.Latency.Seconds(), q)
		paused := 0.0
		if info.Paused {
			paused = 1
		}
		ch <- prometheus.MustNewConstMetric(c.paused, prometheus.GaugeValue, paused, q)
	}
}

// isQueueNotFound matches asynq's error for a queue that has never held a
// task: its type is internal to asynq (and not asynq.ErrQueueNotFound), so
// its text is what can be matched.
func isQueueNotFound(err error) bool {
	return strings.HasSuffix(err.Error(), "does not exist")
}
