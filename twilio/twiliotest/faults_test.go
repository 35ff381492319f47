package twiliotest_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/internal/testenv"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

func TestInFlightLimitIsNeverExceeded(t *testing.T) {
	t.Parallel()
	const limit = 3
	// A long latency holds admitted requests in flight until the test
	// cancels them.
	b := setup(t, twiliotest.Config{Faults: twiliotest.Faults{MaxInFlight: limit, Latency: time.Minute}})
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for range limit {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.srv.URL()+b.messagesPath(), nil)
			req.SetBasicAuth(b.acct.SID, b.acct.AuthToken)
			if resp, err := b.http.Do(req); err == nil {
				resp.Body.Close()
			}
		})
	}
	testenv.WaitFor(t, 10*time.Second, "the limit's worth of requests in flight", func() bool { return b.srv.Stats().InFlight[b.acct.SID] == limit })

	resp, body := b.request(t, http.MethodGet, b.messagesPath(), true)
	e := requireTwilioError(t, resp, body, http.StatusTooManyRequests, 20429)
	require.Equal(t, "Too Many Requests", e.Message)
	require.Equal(t, strconv.Itoa(limit), resp.Header.Get("Twilio-Concurrent-Requests"))
	require.Empty(t, resp.Header.Get("Retry-After"), "Twilio does not promise Retry-After")

	f := b.srv.Faults()
	f.RetryAfter = 1500 * time.Millisecond
	require.NoError(t, b.srv.SetFaults(f))
	resp, _ = b.request(t, http.MethodGet, "/v1/Conversations", true)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "the limit is per account, across APIs")
	require.Equal(t, "2", resp.Header.Get("Retry-After"), "whole seconds, rounded up")

	other, err := b.srv.AddAccount(twiliotest.AccountOptions{})
	require.NoError(t, err)
	require.NoError(t, b.srv.SetFaults(twiliotest.Faults{MaxInFlight: limit}))
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, b.srv.URL()+"/2010-04-01/Accounts/"+other.SID+"/Messages.json", nil)
	require.NoError(t, err)
	req.SetBasicAuth(other.SID, other.AuthToken)
	resp, _ = b.send(t, req)
	require.Equal(t, http.StatusOK, resp.StatusCode, "another account has its own limit")

	cancel()
	wg.Wait()
	testenv.WaitFor(t, 10*time.Second, "the held requests to end", func() bool { return b.srv.Stats().InFlight[b.acct.SID] == 0 })
	st := b.srv.Stats()
	require.Equal(t, limit, st.PeakInFlight[b.acct.SID])
	require.Equal(t, limit+1, st.PeakDemand[b.acct.SID])
	require.Equal(t, int64(2), st.RateLimited)
	require.Equal(t, int64(2), st.ByStatus[429])
}

func TestInFlightLimitUnderContention(t *testing.T) {
	t.Parallel()
	const limit = 4
	b := setup(t, twiliotest.Config{Faults: twiliotest.Faults{MaxInFlight: limit, Latency: 2 * time.Millisecond}})
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 10 {
				req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, b.srv.URL()+b.messagesPath(), nil)
				req.SetBasicAuth(b.acct.SID, b.acct.AuthToken)
				resp, err := b.http.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				n, _ := strconv.Atoi(resp.Header.Get("Twilio-Concurrent-Requests"))
				if n > limit {
					t.Errorf("Twilio-Concurrent-Requests %d over the limit %d", n, limit)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				codes[resp.StatusCode]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	st := b.srv.Stats()
	require.LessOrEqual(t, st.PeakInFlight[b.acct.SID], limit)
	require.Equal(t, 160, codes[200]+codes[429], "every answer is 200 or 429: %v", codes)
	require.Equal(t, int64(codes[429]), st.RateLimited)
}

func TestRequestsPerSecondLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, twiliotest.Config{Faults: twiliotest.Faults{RequestsPerSecond: 2}})
	var got []int
	for range 3 {
		resp, _ := b.request(t, http.MethodGet, b.messagesPath(), true)
		got = append(got, resp.StatusCode)
	}
	// A burst of one second's worth passes; the third request within that
	// second is refused (three requests take far less than half a second).
	require.Equal(t, []int{200, 200, 429}, got)

	// A rate set at run time starts with a full bucket.
	require.NoError(t, b.srv.SetFaults(twiliotest.Faults{RequestsPerSecond: 3}))
	got = nil
	for range 4 {
		resp, _ := b.request(t, http.MethodGet, b.messagesPath(), true)
		got = append(got, resp.StatusCode)
	}
	require.Equal(t, []int{200, 200, 200, 429}, got)
}

func TestInjectedServerErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, twiliotest.Config{Faults: twiliotest.Faults{ErrorRate: 1}})
	seen := map[int]bool{}
	for range 40 {
		resp, body := b.request(t, http.MethodGet, b.messagesPath(), true)
		code := 20500
		if resp.StatusCode == http.StatusServiceUnavailable {
			code = 20503
		}
		requireTwilioError(t, resp, body, resp.StatusCode, code)
		requireTwilioHeaders(t, resp)
		seen[resp.StatusCode] = true
	}
	require.Equal(t, map[int]bool{500: true, 503: true}, seen)
	require.Equal(t, int64(40), b.srv.Stats().InjectedErrors)
	require.NoError(t, b.srv.SetFaults(twiliotest.Faults{}))
	resp, _ := b.request(t, http.MethodGet, b.messagesPath(), true)
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestLatencyIsAdded(t *testing.T) {
	t.Parallel()
	b := setup(t, twiliotest.Config{Faults: twiliotest.Faults{Latency: 30 * time.Millisecond}})
	resp, _ := b.request(t, http.MethodGet, b.messagesPath(), true)
	d, err := strconv.ParseFloat(resp.Header.Get("Twilio-Request-Duration"), 64)
	require.NoError(t, err)
	require.GreaterOrEqual(t, d, 0.03, "the emulator's own measure includes the added latency")
}

func TestDeleteLatencyDelaysOnlyDeletes(t *testing.T) {
	t.Parallel()
	b := setup(t, twiliotest.Config{Faults: twiliotest.Faults{DeleteLatency: time.Second}})
	path := b.mediaPath("MM"+strings.Repeat("0", 32), "ME"+strings.Repeat("0", 32), ".json")
	duration := func(method string) float64 {
		resp, _ := b.request(t, method, path, true)
		d, err := strconv.ParseFloat(resp.Header.Get("Twilio-Request-Duration"), 64)
		require.NoError(t, err)
		return d
	}
	require.Less(t, duration(http.MethodGet), 1.0, "a GET is not slowed")
	require.GreaterOrEqual(t, duration(http.MethodDelete), 1.0, "a DELETE is")
}

// download fetches a media through the redirect with Go's default client.
func download(t *testing.T, b *testBundle, msg, sid string) ([]byte, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, b.srv.URL()+b.mediaPath(msg, sid, ""), nil)
	require.NoError(t, err)
	req.SetBasicAuth(b.acct.SID, b.acct.AuthToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New(resp.Status)
	}
	return io.ReadAll(resp.Body)
}

func TestCutAndResetDownloads(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		desc   string
		faults twiliotest.Faults
		check  func(t *testing.T, err error, st twiliotest.Stats)
	}{
		{"cut", twiliotest.Faults{CutRate: 1}, func(t *testing.T, err error, st twiliotest.Stats) {
			require.ErrorIs(t, err, io.ErrUnexpectedEOF)
			require.Equal(t, int64(1), st.CutBodies)
		}},
		{"reset", twiliotest.Faults{ResetRate: 1}, func(t *testing.T, err error, st twiliotest.Stats) {
			// The client sees the RST, or the early end if it read
			// everything before the reset arrived.
			require.True(t, errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF), "got %v", err)
			require.Equal(t, int64(1), st.ResetBodies)
		}},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			b := setup(t, twiliotest.Config{Faults: tt.faults})
			m := addMMS(t, b, twiliotest.MediaOptions{Size: 1 << 20})
			got, err := download(t, b, m.SID, m.MediaSIDs[0])
			tt.check(t, err, b.srv.Stats())
			want := expected(t, b.srv, m.MediaSIDs[0])
			require.Less(t, len(got), len(want))
			require.Equal(t, want[:len(got)], got, "what arrives is a prefix of the content")

			require.NoError(t, b.srv.SetFaults(twiliotest.Faults{}))
			got, err = download(t, b, m.SID, m.MediaSIDs[0])
			require.NoError(t, err)
			require.Equal(t, want, got, "a retry succeeds once the fault is gone")
		})
	}
}

func TestVanishedContent(t *testing.T) {
	t.Parallel()
	b := setup(t, twiliotest.Config{Faults: twiliotest.Faults{VanishRate: 0.5}})
	_, err := b.srv.Generate(b.acct.SID, twiliotest.Dataset{Messages: 10, MinMediaPerMessage: 4, MaxMediaPerMessage: 4, NoMediaShare: -1, MaxMediaSize: 2048})
	require.NoError(t, err)
	vanished := 0
	for m := range b.srv.Messages(b.acct.SID) {
		for _, sid := range m.MediaSIDs {
			info, ok := b.srv.Media(sid)
			require.True(t, ok)
			var js map[string]any
			b.getJSON(t, b.mediaPath(m.SID, sid, ".json"), &js)
			resp, body := b.request(t, http.MethodGet, b.mediaPath(m.SID, sid, ""), true)
			if info.Vanished {
				vanished++
				requireTwilioError(t, resp, body, http.StatusNotFound, 20404)
			} else {
				require.Equal(t, http.StatusFound, resp.StatusCode)
			}
		}
	}
	require.Greater(t, vanished, 5)
	require.Less(t, vanished, 35)
	require.Equal(t, int64(vanished), b.srv.Stats().VanishedContent)

	m := addMMS(t, b, twiliotest.MediaOptions{Size: 5})
	require.NoError(t, b.srv.SetFaults(twiliotest.Faults{}))
	resp, _ := b.request(t, http.MethodGet, b.mediaPath(m.SID, m.MediaSIDs[0], ""), true)
	require.Equal(t, http.StatusFound, resp.StatusCode)
	signed := resp.Header.Get("Location")
	require.NoError(t, b.srv.VanishContent(m.MediaSIDs[0]))
	resp, _ = b.request(t, http.MethodGet, b.mediaPath(m.SID, m.MediaSIDs[0], ""), true)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp, _ = b.request(t, http.MethodGet, signed, false)
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "a signed URL of vanished content 404s too")
}

func TestSlowBodyDeliversEveryByte(t *testing.T) {
	t.Parallel()
	b := setup(t, twiliotest.Config{Faults: twiliotest.Faults{BodyBytesPerSecond: 400_000}})
	m := addMMS(t, b, twiliotest.MediaOptions{Size: 60_000})
	got, err := download(t, b, m.SID, m.MediaSIDs[0])
	require.NoError(t, err)
	require.Equal(t, expected(t, b.srv, m.MediaSIDs[0]), got)
	require.Equal(t, int64(60_000), b.srv.Stats().ContentBytes)
}

func TestFaultsValidation(t *testing.T) {
	t.Parallel()
	b := setup(t, twiliotest.Config{})
	for _, f := range []twiliotest.Faults{
		{MaxInFlight: -1}, {ErrorRate: 1.5}, {CutRate: 0.6, ResetRate: 0.6}, {Latency: -time.Second}, {BodyBytesPerSecond: -1},
	} {
		require.Error(t, b.srv.SetFaults(f), "%+v", f)
	}
	_, err := twiliotest.NewServer(twiliotest.Config{RedirectStatus: 301})
	require.ErrorContains(t, err, "RedirectStatus")
	_, err = twiliotest.NewServer(twiliotest.Config{APIHost: "localhost", SignedHost: "LOCALHOST"})
	require.ErrorContains(t, err, "must differ")
}

// A client that waits for each answer before the next request never meets
// the limit, and sees each request in the stats as soon as it has the answer.
func TestSequentialClientIsNeverLimited(t *testing.T) {
	t.Parallel()
	b := setup(t, twiliotest.Config{Faults: twiliotest.Faults{MaxInFlight: 1}})
	_, err := b.srv.Generate(b.acct.SID, twiliotest.Dataset{Messages: 5, NoMediaShare: -1, MaxMediaSize: 100_000})
	require.NoError(t, err)
	var m twiliotest.MessageInfo
	for m = range b.srv.Messages(b.acct.SID) {
		break
	}
	paths := []string{
		b.messagesPath() + "?PageSize=1000",
		b.mediaPath(m.SID, m.MediaSIDs[0], ".json"),
		b.mediaPath(m.SID, m.MediaSIDs[0], ".xml"),
		b.mediaPath(m.SID, m.MediaSIDs[0], ""),
		b.mediaPath(m.SID, "ME"+m.MediaSIDs[0][4:]+"00", ".json"),
	}
	for i := range 100 {
		resp, _ := b.request(t, http.MethodGet, paths[i%len(paths)], true)
		require.NotEqual(t, http.StatusTooManyRequests, resp.StatusCode, "request %d", i)
		require.Equal(t, int64(i+1), b.srv.Stats().Requests)
		require.Len(t, b.srv.Requests(), i+1)
	}
	require.Zero(t, b.srv.Stats().RateLimited)
}

// InFlightSeconds is what a benchmark divides by a run's length for the
// mean number of requests in flight: it must count each admitted request
// for as long as it was held, and nothing after ResetStats.
func TestInFlightSecondsIntegratesTheRequestsHeld(t *testing.T) {
	t.Parallel()
	const (
		requests = 3
		latency  = 100 * time.Millisecond
	)
	b := setup(t, twiliotest.Config{Faults: twiliotest.Faults{Latency: latency}})
	get := func() {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, b.srv.URL()+b.messagesPath(), nil)
		require.NoError(t, err)
		req.SetBasicAuth(b.acct.SID, b.acct.AuthToken)
		resp, err := b.http.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
	}
	get()
	b.srv.ResetStats()
	require.Zero(t, b.srv.Stats().InFlightSeconds[b.acct.SID], "a reset starts the integral again")

	start := time.Now()
	var wg sync.WaitGroup
	for range requests {
		wg.Go(get)
	}
	wg.Wait()
	elapsed := time.Since(start)
	got := b.srv.Stats().InFlightSeconds[b.acct.SID]
	require.GreaterOrEqual(t, got, (requests * latency).Seconds(), "each request is held for the latency at least")
	require.LessOrEqual(t, got, (requests * elapsed).Seconds(), "no request is held longer than the client waited")
	time.Sleep(20 * time.Millisecond)
	require.Equal(t, got, b.srv.Stats().InFlightSeconds[b.acct.SID], "nothing in flight, nothing added")
}
