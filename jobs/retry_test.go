package jobs

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/twilio"
)

func TestErrorClassification(t *testing.T) {
	t.Parallel()
	rate := fmt.Errorf("list page: %w", &twilio.RateLimitError{RetryAfter: 4 * time.Second, Err: &twilio.Error{Status: 429, Code: 20429}})
	cases := []struct {
		desc      string
		err       error
		failure   bool // counts as an attempt
		permanent bool // no retry can fix it
	}{
		{"rate limited", rate, false, false},
		{"backpressure", &RetryLaterError{After: time.Second, Reason: "backlog"}, false, false},
		{"twilio 400 with a code", &twilio.Error{Status: 400, Code: 21211, Message: "Invalid"}, true, true},
		{"twilio 401", &twilio.Error{Status: 401, Code: 20003}, true, true},
		{"storage 403 without a code", fmt.Errorf("download: %w", &twilio.Error{Status: 403}), true, false},
		{"twilio 500", &twilio.Error{Status: 500, Code: 20500}, true, false},
		{"body cut short", fmt.Errorf("download: %w", io.ErrUnexpectedEOF), true, false},
		{"corrupt payload", fmt.Errorf("bad: %w", asynq.SkipRetry), true, true},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			err := retryLater(tc.err)
			require.Equal(t, tc.failure, IsFailure(err))
			require.Equal(t, tc.permanent, isPermanent(err) || twilioPermanent(err))
		})
	}
	var rl *RetryLaterError
	paused := retryLater(rate)
	require.True(t, errors.As(paused, &rl))
	require.GreaterOrEqual(t, rl.After, 2*time.Second, "Retry-After is honoured (with jitter below it)")
	require.Less(t, rl.After, 4*time.Second)
	require.Equal(t, rl.After, RetryDelay(3, paused, nil), "asynq waits what the pause asked for")
}

func TestRetryDelayBackoffIsBoundedAndJittered(t *testing.T) {
	t.Parallel()
	for n := range 30 {
		d := RetryDelay(n, errors.New("boom"), nil)
		require.Greater(t, d, time.Duration(0))
		require.LessOrEqual(t, d, 5*time.Minute, "attempt %d waits too long", n)
	}
	require.Less(t, RetryDelay(0, errors.New("boom"), nil), 2*time.Second+1)
}

// A listing task is a gate its day or message waits on: its backoff stays
// within a minute (a page task 5 minutes back kept its run idle, and the
// reconciler silent, that long), and its retries keep it trying as long as
// before; a pause it asks for (Twilio's 429) is still honoured in full.
func TestListingTaskBackoffIsShortAndKeepsTrying(t *testing.T) {
	t.Parallel()
	q := QueuesFor("mediasync")
	run := uuid.Must(uuid.NewV7())
	page, err := NewListPageTask(q, ListPagePayload{RunID: run, Window: 1, Page: 2})
	require.NoError(t, err)
	msg, err := NewArchiveMessageTask(q, ArchiveMessagePayload{RunID: run, MessageSID: "MM0123456789abcdef0123456789abcdef"})
	require.NoError(t, err)
	start, err := NewStartRunTask(q, run)
	require.NoError(t, err)
	media, err := NewArchiveMediaTask(q, MediaPayload{RunID: run, MediaSID: "ME0123456789abcdef0123456789abcdef"})
	require.NoError(t, err)
	for _, tk := range []*asynq.Task{page, msg, start} {
		var total time.Duration
		for n := range listMaxRetry {
			d := RetryDelay(n, errors.New("twilio: 503"), tk)
			require.LessOrEqual(t, d, time.Minute, "%s, attempt %d, waits %s", tk.Type(), n, d)
			total += d
		}
		require.Greater(t, total, 30*time.Minute, "%s gives up after %s of trying", tk.Type(), total)
		require.Equal(t, 4*time.Minute, RetryDelay(9, &RetryLaterError{After: 4 * time.Minute}, tk))
	}
	var longest time.Duration
	for range 20 {
		longest = max(longest, RetryDelay(12, errors.New("s3: 503"), media))
	}
	require.Greater(t, longest, time.Minute, "a media task keeps its longer backoff")

	// A message task whose media are listed fails in their downloads or
	// stores: it backs off as media work, not as a listing.
	longest = 0
	for range 20 {
		longest = max(longest, RetryDelay(12, &mediaStageError{errors.New("s3: 503")}, msg))
	}
	require.Greater(t, longest, time.Minute, "a message task's media work keeps the media backoff")
	require.LessOrEqual(t, longest, maxRetryDelay)
	require.Equal(t, 4*time.Minute, RetryDelay(9, &mediaStageError{&RetryLaterError{After: 4 * time.Minute}}, msg))
}

// A payload that does not parse is archived at once, never retried.
func TestCorruptPayloadSkipsRetry(t *testing.T) {
	t.Parallel()
	for _, payload := range []string{``, `{`, `{"run_id":"not-a-uuid"}`, `{"run_id":"00000000-0000-0000-0000-000000000000","media_sid":"ME1"}`, `[]`} {
		_, err := decode[MediaPayload](asynq.NewTask(TypeArchiveMedia, []byte(payload)))
		require.Error(t, err, "payload %q", payload)
		require.ErrorIs(t, err, asynq.SkipRetry, "payload %q", payload)
	}
}

func FuzzDecodePayloads(f *testing.F) {
	for _, s := range []string{
		`{"run_id":"01a207c4-813c-7410-a23e-d1c030489966","media_sid":"ME0123456789abcdef0123456789abcdef"}`,
		`{"run_id":"01a207c4-813c-7410-a23e-d1c030489966","window":3,"page":2}`,
		`{"run_id":"01a207c4-813c-7410-a23e-d1c030489966","message_sid":"MM0123456789abcdef0123456789abcdef"}`,
		``, `null`, `{"window":-1}`, "\x00",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// Every decoder either accepts a well-formed payload or rejects it
		// as permanent: a corrupt task is rejected once, never retried.
		check := func(err error) {
			if err != nil && !errors.Is(err, asynq.SkipRetry) {
				t.Fatalf("decode error is retryable: %v", err)
			}
		}
		_, err := decode[MediaPayload](asynq.NewTask(TypeArchiveMedia, b))
		check(err)
		_, err = decode[ListPagePayload](asynq.NewTask(TypeListPage, b))
		check(err)
		_, err = decode[ArchiveMessagePayload](asynq.NewTask(TypeArchiveMessage, b))
		check(err)
		_, err = decode[StartRunPayload](asynq.NewTask(TypeStartRun, b))
		check(err)
	})
}

// A Twilio that answers 429 with Retry-After: 86400 (a day) pauses the task
// for minutes, as the fleet's back-off is capped, not for a day.
func TestRateLimitPauseIsCapped(t *testing.T) {
	t.Parallel()
	const account = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "86400")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"code": 20429, "message": "Too Many Requests", "more_info": "https://www.twilio.com/docs/errors/20429", "status": 429}`)
	}))
	t.Cleanup(srv.Close)
	c, err := twilio.New(account, twilio.WithAuthToken("tok3nS3cretValue0123456789abcdefX"),
		twilio.WithBaseURL(srv.URL), twilio.WithHTTPClient(srv.Client()))
	require.NoError(t, err)

	_, err = c.Messages.Get(t.Context(), "MMc26223853f8c46b4ab7dfaa6abba0a26")
	var rl *twilio.RateLimitError
	require.ErrorAs(t, err, &rl)
	require.Equal(t, 24*time.Hour, rl.RetryAfter, "the client reports the server's wait")

	var later *RetryLaterError
	require.ErrorAs(t, retryLater(err), &later)
	require.Greater(t, later.After, time.Duration(0))
	require.LessOrEqual(t, later.After, 5*time.Minute, "a day's Retry-After parks the task for %s", later.After)
	require.Contains(t, later.Reason, "capped")
	require.Equal(t, later.After, RetryDelay(0, later, nil), "asynq waits what the pause asked for")
	require.LessOrEqual(t, RetryDelay(0, &RetryLaterError{After: 24 * time.Hour}, nil), 5*time.Minute)
	require.False(t, IsFailure(retryLater(err)), "a rate limit does not use up a retry")
}
