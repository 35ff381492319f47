package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/twilio/twiliotest"
)

func TestInFlightProfile(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	api := func(start, d time.Duration, status int) twiliotest.Request {
		return twiliotest.Request{Host: "api", Time: t0.Add(start), Duration: d, Status: status}
	}
	cases := []struct {
		name string
		log  []twiliotest.Request
		n    int
		want []float64
	}{
		{"empty", nil, 4, nil},
		{"one request fills its span", []twiliotest.Request{api(0, 4*time.Second, 200)}, 4, []float64{1, 1, 1, 1}},
		{"start and tail thinner than the middle", []twiliotest.Request{
			api(0, 4*time.Second, 200),
			api(time.Second, 2*time.Second, 200),
			api(time.Second, 2*time.Second, 200),
			api(1500*time.Millisecond, time.Second, 200),
		}, 4, []float64{1, 3.5, 3.5, 1}},
		{"429s and signed downloads are not in flight", []twiliotest.Request{
			api(0, 2*time.Second, 200),
			api(0, 2*time.Second, http.StatusTooManyRequests),
			{Host: "signed", Time: t0, Duration: 2 * time.Second, Status: 200},
		}, 2, []float64{1, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := inFlightProfile(c.log, c.n)
			require.Len(t, got, len(c.want))
			for i := range c.want {
				require.InDelta(t, c.want[i], got[i], 1e-9, "part %d of %v", i, got)
			}
		})
	}
}
