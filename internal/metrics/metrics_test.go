package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/retention"
)

type fakeGauger struct{ err error }

func (f fakeGauger) Gauges(context.Context, string) (catalog.Gauges, error) {
	return catalog.Gauges{
		Policies: []catalog.PolicyGauge{{Name: "nightly", Watermark: time.Unix(0, 0), OldestUnsaved: time.Unix(100, 0), OldestUnsavedN: 3}},
		Runs:     []catalog.RunCount{{Kind: "backfill", State: catalog.RunSucceeded, N: 2}},
	}, f.err
}

type fakeQueues map[string]*asynq.QueueInfo

func (f fakeQueues) GetQueueInfo(q string) (*asynq.QueueInfo, error) {
	if info, ok := f[q]; ok {
		return info, nil
	}
	return nil, errors.New(`NOT_FOUND: queue "` + q + `" does not exist`)
}

type nopLimiter struct{}

func (nopLimiter) Acquire(context.Context) (func(), error) { return func() {}, nil }

// exercised returns metrics with every series made to exist once, and the
// names a query may use for them (a histogram's _bucket, _count, _sum).
func exercised(t *testing.T) (*Metrics, map[string]bool) {
	t.Helper()
	m := New()
	m.Register(m.CatalogCollector(fakeGauger{}, "", retention.Default, func() time.Time { return time.Unix(1000, 0) }),
		m.QueueCollector(fakeQueues{"media": {Queue: "media", Pending: 4}}, "media", "list"))
	m.Media("messaging", ResultArchived, 2)
	m.ArchivedBytes("messaging", 100)
	m.TwilioRequest("list", 200)
	m.TwilioRequest("content", 0)
	m.Verified(VerifyOK)
	rel, err := m.TimeLimiter(nopLimiter{}).Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	rel()
	_ = m.TaskDuration(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil })).
		ProcessTask(t.Context(), asynq.NewTask("run:start", nil))
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range fams {
		names[f.GetName()] = true
		if f.GetType().String() == "HISTOGRAM" {
			for _, s := range []string{"_bucket", "_count", "_sum"} {
				names[f.GetName()+s] = true
			}
		}
	}
	return m, names
}

func scrapeText(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

// The series an operator queries are there, with the labels the README
// documents; a queue that has never held a task is reported empty.
func TestScrape(t *testing.T) {
	m, _ := exercised(t)
	body := scrapeText(t, m)
	for _, want := range []string{
		`mediasync_media_total{result="archived",source="messaging"} 2`,
		`mediasync_media_total{result="failed",source="conversations"} 0`,
		`mediasync_archived_bytes_total{source="messaging"} 100`,
		`mediasync_twilio_requests_total{api="list",code="200"} 1`,
		`mediasync_twilio_requests_total{api="content",code="error"} 1`,
		`mediasync_ratelimit_wait_seconds_count 1`,
		`mediasync_task_duration_seconds_count{type="run:start"} 1`,
		`mediasync_verify_total{result="mismatch"} 0`,
		`mediasync_policy_watermark_age_seconds{policy="nightly"} 1000`,
		`mediasync_policy_oldest_unarchived_age_seconds{policy="nightly"} 900`,
		`mediasync_policy_unarchived_media{policy="nightly"} 3`,
		`mediasync_twilio_retention_seconds 3.456e+07`,
		`mediasync_policy_purge_in_seconds{policy="nightly"} 3.45591e+07`,
		`mediasync_runs{kind="backfill",state="succeeded"} 2`,
		`mediasync_queue_tasks{queue="media",state="pending"} 4`,
		`mediasync_queue_tasks{queue="list",state="pending"} 0`,
		`mediasync_scrape_errors_total{collector="queue"} 0`,
		`mediasync_build_info{goversion="go`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
}

// The same catalog under a 30-day window and the default 400-day one:
// the window and the time left before the purge follow
// TWILIO_RETENTION_DAYS; the ages do not.
func TestScrapeFollowsTheRetentionWindow(t *testing.T) {
	for _, tc := range []struct {
		days int
		want []string
	}{
		{30, []string{`mediasync_twilio_retention_seconds 2.592e+06`, `mediasync_policy_purge_in_seconds{policy="nightly"} 2.5911e+06`}},
		{400, []string{`mediasync_twilio_retention_seconds 3.456e+07`, `mediasync_policy_purge_in_seconds{policy="nightly"} 3.45591e+07`}},
	} {
		m := New()
		m.Register(m.CatalogCollector(fakeGauger{}, "", retention.Days(tc.days), func() time.Time { return time.Unix(1000, 0) }))
		body := scrapeText(t, m)
		for _, want := range append(tc.want, `mediasync_policy_oldest_unarchived_age_seconds{policy="nightly"} 900`) {
			if !strings.Contains(body, want) {
				t.Errorf("TWILIO_RETENTION_DAYS=%d: /metrics has no %s", tc.days, want)
			}
		}
	}
}

// A scrape whose Postgres does not answer still serves the rest, and
// counts the miss in that same scrape, not the next one.
func TestScrapeSurvivesTheCatalog(t *testing.T) {
	m := New()
	m.Register(m.CatalogCollector(fakeGauger{err: errors.New("down")}, "", retention.Default, time.Now))
	for n := 1; n <= 3; n++ {
		body := scrapeText(t, m)
		if !strings.Contains(body, fmt.Sprintf(`mediasync_scrape_errors_total{collector="catalog"} %d`, n)) || !strings.Contains(body, "mediasync_media_total") {
			t.Fatalf("scrape %d with the catalog down:\n%s", n, body)
		}
	}
}

var metricName = regexp.MustCompile(`\b(?:mediasync|process|go)_[a-z0-9_]+\b`)

// Every metric the Grafana dashboard and the Prometheus alert rules query
// is one the worker serves: a renamed metric fails here, not on an
// operator's empty graph or silent alert.
func TestDeployFilesQueryServedMetrics(t *testing.T) {
	_, served := exercised(t)

	raw, err := os.ReadFile("../../deploy/grafana/mediasync.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			ID         int    `json:"id"`
			Title      string `json:"title"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("deploy/grafana/mediasync.json: %v", err)
	}
	if dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatal("dashboard without uid or panels")
	}
	var ids []int
	for _, p := range dash.Panels {
		if slices.Contains(ids, p.ID) {
			t.Errorf("panel %q: id %d used twice", p.Title, p.ID)
		}
		ids = append(ids, p.ID)
		if p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource %q, want the dashboard's ${datasource} variable", p.Title, p.Datasource.UID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q queries nothing", p.Title)
		}
		for _, tg := range p.Targets {
			checkNames(t, "dashboard panel "+p.Title, tg.Expr, served)
		}
	}

	rules, err := os.ReadFile("../../deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var exprs int
	for line := range strings.Lines(string(rules)) {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		exprs += len(metricName.FindAllString(line, -1))
		checkNames(t, "deploy/prometheus/alerts.yml", line, served)
	}
	if exprs == 0 {
		t.Fatal("alerts.yml queries no metric")
	}
}

func checkNames(t *testing.T, where, expr string, served map[string]bool) {
	t.Helper()
	names := metricName.FindAllString(expr, -1)
	for _, n := range names {
		if !served[n] {
			t.Errorf("%s queries %s, which the worker does not serve", where, n)
		}
	}
}
