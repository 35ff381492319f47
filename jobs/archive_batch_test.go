package jobs

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/twilio"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// failMediaList answers 503 to one message's media list.
type failMediaList struct{ message string }

func (f failMediaList) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/Messages/"+f.message+"/Media.json") {
		return &http.Response{StatusCode: http.StatusServiceUnavailable, Status: "503 Service Unavailable",
			Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	}
	return http.DefaultTransport.RoundTrip(r)
}

// A task of several messages, one of whose media lists fails for a reason
// a retry may fix: the others' media are archived and committed, and the
// task backs off as a listing (not as media work), its failing message
// still pending.
func TestBatchArchivesPastAFailingListing(t *testing.T) {
	t.Parallel()
	b := holdSetup(t, 0)
	ctx := t.Context()
	fail := &failMediaList{} // its message is chosen below, before any request
	srv := b.emulator(t, twilio.WithHTTPClient(&http.Client{Transport: fail}),
		twilio.WithRetryPolicy(twilio.RetryPolicy{MaxAttempts: 1}))
	var msgs []twiliotest.MessageInfo
	for range 3 {
		m, err := srv.AddMessage(testAccount, twiliotest.MessageOptions{
			DateSent: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Media: []twiliotest.MediaOptions{{ContentType: "image/jpeg", Size: 4096}}})
		require.NoError(t, err)
		msgs = append(msgs, m)
		require.NoError(t, b.catalog.RecordMessages(ctx, b.run, []catalog.MessageRecord{{
			SID: m.SID, AccountSID: testAccount, DateSent: m.DateSent, NumMedia: 1, NumMediaKnown: true}}, false))
	}
	failing := msgs[1]
	fail.message = failing.SID

	task, err := NewArchiveMessageTask(b.h.queues, ArchiveMessagePayload{RunID: b.run, MessageSID: msgs[0].SID,
		More: []string{failing.SID, msgs[2].SID}})
	require.NoError(t, err)
	err = b.h.ArchiveMessage(ctx, task)
	require.Error(t, err, "retried for the failing listing")
	var media *mediaStageError
	require.False(t, errors.As(err, &media), "backs off as a listing: %v", err)
	require.False(t, isPermanent(err))

	for _, m := range []twiliotest.MessageInfo{msgs[0], msgs[2]} {
		it, err := b.catalog.GetMedia(ctx, m.MediaSIDs[0])
		require.NoError(t, err)
		require.Equal(t, catalog.MediaArchived, it.State, "a batch-mate's media is archived")
	}
	_, states, err := b.catalog.GetRunMessages(ctx, b.run, []string{failing.SID, msgs[0].SID})
	require.NoError(t, err)
	require.Equal(t, catalog.MessagePending, states[failing.SID], "the failing message is listed again by the retry")
	require.Equal(t, catalog.MessageListed, states[msgs[0].SID])
}
