package worker

import (
	"context"
	"time"

	"github.com/mediasync/mediasync/catalog"
	"github.com/prometheus/client_golang/prometheus"
)

// policyCollector reports, at each scrape, how far each policy is from
// Twilio's 13-month purge. It reads Postgres at scrape time so the figures
// are the catalog's, whichever worker is scraped.
type policyCollector struct {
	catalog *catalog.Catalog
	account string
	now     func() time.Time

	watermarkAge, oldestAge, unarchived *prometheus.Desc
}

func newPolicyCollector(c *catalog.Catalog, account string, now func() time.Time) *policyCollector {
	return &policyCollector{
		catalog: c, account: account, now: now,
		watermarkAge: prometheus.NewDesc("mediasync_policy_watermark_age_seconds",
			"Age of the policy's watermark: everything sent before it is archived.", []string{"policy"}, nil),
		oldestAge: prometheus.NewDesc("mediasync_policy_oldest_unarchived_age_seconds",
			"Age of the oldest media in the policy's scope not yet archived (0 if none). Twilio deletes MMS media after 13 months.",
			[]string{"policy"}, nil),
		unarchived: prometheus.NewDesc("mediasync_policy_unarchived_media",
			"Media in the policy's scope known and not yet archived (pending or failed).", []string{"policy"}, nil),
	}
}

func (p *policyCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- p.watermarkAge
	ch <- p.oldestAge
	ch <- p.unarchived
}

func (p *policyCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	policies, err := p.catalog.Policies(ctx, p.account)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(p.watermarkAge, err)
		return
	}
	now := p.now()
	for _, pol := range policies {
		h, err := p.catalog.PolicyHealth(ctx, pol, now)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(p.watermarkAge, err)
			return
		}
		oldest := 0.0
		if !h.OldestUnsaved.IsZero() {
			oldest = now.Sub(h.OldestUnsaved).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(p.watermarkAge, prometheus.GaugeValue, h.WatermarkAge.Seconds(), pol.Name)
		ch <- prometheus.MustNewConstMetric(p.oldestAge, prometheus.GaugeValue, oldest, pol.Name)
		ch <- prometheus.MustNewConstMetric(p.unarchived, prometheus.GaugeValue, float64(h.OldestUnsavedN), pol.Name)
	}
}
