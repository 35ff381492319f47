package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/twilio"
)

// useMCSProxy points the handlers' MCS at a proxy in front of the
// emulator; intercept sees each upload first and answers it itself when it
// returns true.
func (b *restoreBundle) useMCSProxy(t *testing.T, intercept func(w http.ResponseWriter, r *http.Request) bool, opts ...twilio.Option) {
	t.Helper()
	target, err := url.Parse(b.emu.URL())
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && intercept != nil && intercept(w, r) {
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	opts = append([]twilio.Option{twilio.WithAuthToken(b.acct.AuthToken), twilio.WithBaseURL(b.emu.URL()), twilio.WithMCSURL(srv.URL)}, opts...)
	tw, err := twilio.New(b.acct.SID, opts...)
	require.NoError(t, err)
	b.h.twilio = tw
}

// An upload whose whole file reached Twilio but whose answer was lost (a
// gateway's 502 after the Media was created) cannot be told from one that
// created nothing: it ends unconfirmed and is not uploaded again, however
// often the task runs; the restore fails naming it.
func TestRestoreUploadWithALostAnswerIsNotRepeated(t *testing.T) {
	t.Parallel()
	b := restoreSetup(t, 3)
	var lost atomic.Int32
	b.useMCSProxy(t, func(w http.ResponseWriter, r *http.Request) bool {
		if !lost.CompareAndSwap(0, 1) {
			return false
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return false
		}
		// Twilio gets the file and creates the Media; the answer is lost.
		fwd, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, b.emu.URL()+r.URL.RequestURI(), bytes.NewReader(body))
		fwd.Header = r.Header.Clone()
		if resp, err := http.DefaultClient.Do(fwd); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
		http.Error(w, "bad gateway", http.StatusBadGateway)
		return true
	})
	id := b.restore(t)
	for range 3 {
		require.NoError(t, b.batch(t, id, 0))
	}
	require.Equal(t, 3, b.uploads(), "three Media created, one of them unknown to the restore; none twice")
	st := b.finish(t, id)
	require.Equal(t, catalog.RunFailed, st.State)
	require.Equal(t, 2, st.Restores.Restored)
	require.Equal(t, 1, st.Restores.Unconfirmed)
	require.Contains(t, st.Failures[0].Reason, "whole file was sent")
}

// An upload cut off before the whole file was sent cannot have created a
// Media: it goes back to pending and is uploaded by the next attempt, once.
func TestRestoreUploadCutShortIsRetried(t *testing.T) {
	t.Parallel()
	b := restoreSetupSized(t, 2, 8<<20) // larger than any socket buffer
	var cut atomic.Int32
	b.useMCSProxy(t, func(w http.ResponseWriter, r *http.Request) bool {
		if !cut.CompareAndSwap(0, 1) {
			return false
		}
		_, _ = io.CopyN(io.Discard, r.Body, 1<<20)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close()
		}
		return true
	})
	id := b.restore(t)
	err := b.batch(t, id, 0)
	require.Error(t, err, "the cut upload is retried")
	require.Equal(t, 1, b.uploads())
	require.NoError(t, b.batch(t, id, 0))
	require.Equal(t, 2, b.uploads(), "each media uploaded once")
	st := b.finish(t, id)
	require.Equal(t, catalog.RunSucceeded, st.State, "%+v", st.Failures)
}

// countingLimiter counts the requests that held a slot.
type countingLimiter struct{ n atomic.Int32 }

func (l *countingLimiter) Acquire(context.Context) (func(), error) {
	l.n.Add(1)
	return func() {}, nil
}

// Uploads go through the account's Twilio rate limiter like every other
// request to Twilio's API.
func TestRestoreUploadsHoldARateLimitSlot(t *testing.T) {
	t.Parallel()
	b := restoreSetup(t, 4)
	l := &countingLimiter{}
	b.useMCSProxy(t, nil, twilio.WithLimiter(l))
	id := b.restore(t)
	require.NoError(t, b.batch(t, id, 0))
	require.Equal(t, 4, b.uploads())
	require.EqualValues(t, 4, l.n.Load(), "one slot per upload")
}

// Twilio's answer is checked against what was sent: a Media that says it
// holds another size (or type) than the file sent fails its media, with
// the Media's SID recorded so it can be found, and is not uploaded again.
func TestRestoreUploadAnsweredWithAnotherSizeFails(t *testing.T) {
	t.Parallel()
	b := restoreSetup(t, 2)
	var once atomic.Int32
	var created atomic.Value
	b.useMCSProxy(t, func(w http.ResponseWriter, r *http.Request) bool {
		if !once.CompareAndSwap(0, 1) {
			return false
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return false
		}
		fwd, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, b.emu.URL()+r.URL.RequestURI(), bytes.NewReader(body))
		fwd.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(fwd)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			return false
		}
		created.Store(m["sid"])
		m["size"] = len(body) - 1 // a file cut by one byte on Twilio's side
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(m)
		return true
	})
	id := b.restore(t)
	require.NoError(t, b.batch(t, id, 0))
	require.NoError(t, b.batch(t, id, 0))
	require.Equal(t, 2, b.uploads())
	var state, newSID, reason string
	require.NoError(t, b.pool.QueryRow(t.Context(), `
		SELECT state, coalesce(new_media_sid, ''), coalesce(error, '') FROM restore_media WHERE run_id = $1 AND state <> 'restored'`, id).
		Scan(&state, &newSID, &reason))
	require.Equal(t, "failed", state)
	require.Equal(t, created.Load(), newSID, "the Media Twilio created is named")
	require.Contains(t, reason, "size mismatch")
	st := b.finish(t, id)
	require.Equal(t, catalog.RunFailed, st.State)
	require.Equal(t, 1, st.Restores.Restored)
}
