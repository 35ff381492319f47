package twilio

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// These tests run the Conversations and MCS clients against the project's
// emulator; hostile answers are played by httptest in
// conversations_hostile_test.go.

// emuNow is the emulator's clock, and the client's, in these tests.
var emuNow = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

type emuBundle struct {
	srv     *twiliotest.Server
	acct    twiliotest.Account
	client  *Client
	clock   *fakeClock
	limiter *countingLimiter
	hosts   *hostLog
}

// hostLog records the requests the client sends, and lets a test act
// after each one (advance the emulator's clock).
type hostLog struct {
	mu    sync.Mutex
	reqs  []*http.Request
	after func(req *http.Request)
	next  http.RoundTripper
}

func (h *hostLog) RoundTrip(req *http.Request) (*http.Response, error) {
	h.mu.Lock()
	h.reqs = append(h.reqs, req)
	after := h.after
	h.mu.Unlock()
	resp, err := h.next.RoundTrip(req)
	if after != nil {
		after(req)
	}
	return resp, err
}

func (h *hostLog) paths() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.reqs {
		out = append(out, r.Method+" "+r.URL.Path)
	}
	return out
}

func setupEmu(t *testing.T, cfg twiliotest.Config, opts ...Option) *emuBundle {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return emuNow }
	}
	srv := twiliotest.NewTestServer(t, cfg)
	acct, err := srv.AddAccount(twiliotest.AccountOptions{})
	require.NoError(t, err)
	b := &emuBundle{srv: srv, acct: acct, clock: newFakeClock(), limiter: newCountingLimiter(t),
		hosts: &hostLog{next: http.DefaultTransport}}
	b.clock.now = emuNow
	all := append([]Option{
		WithAPIKey(acct.APIKey, acct.APISecret),
		WithBaseURL(srv.URL()), WithConversationsURL(srv.URL()), WithMCSURL(srv.URL()),
		WithHTTPClient(&http.Client{Transport: b.hosts}),
		WithClock(b.clock), WithLimiter(b.limiter),
	}, opts...)
	b.client, err = New(acct.SID, all...)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.Zero(t, srv.Stats().SignedWithAuthorization, "credentials reached a signed URL")
	})
	return b
}

func (b *emuBundle) addConversations(t *testing.T, created ...time.Time) []string {
	t.Helper()
	var out []string
	for _, at := range created {
		sid, err := b.srv.AddConversation(b.acct.SID, twiliotest.ConversationOptions{DateCreated: at})
		require.NoError(t, err)
		out = append(out, sid)
	}
	return out
}

func collect[T any](t *testing.T, seq func(func(*T, error) bool)) []T {
	t.Helper()
	var out []T
	for v, err := range seq {
		require.NoError(t, err)
		out = append(out, *v)
	}
	return out
}

func TestConversationsListWithDatesAndPaging(t *testing.T) {
	t.Parallel()
	b := setupEmu(t, twiliotest.Config{})
	day := func(n int) time.Time { return emuNow.Add(time.Duration(n) * 24 * time.Hour) }
	sids := b.addConversations(t, day(-10), day(-7), day(-6), day(-5), day(-5).Add(time.Hour), day(-2), day(-1))
	ctx := t.Context()

	all := collect(t, b.client.Conversations.All(ctx, "", ConversationListParams{PageSize: 2}))
	require.Len(t, all, len(sids))
	for i, cv := range all {
		require.Equal(t, sids[i], cv.SID, "without a date filter the emulator lists oldest first")
		require.Equal(t, b.acct.ServiceSID, cv.ChatServiceSID)
		require.Equal(t, ConversationActive, cv.State)
	}

	for _, tc := range []struct {
		desc       string
		start, end time.Time
		want       []string // newest first
	}{
		{"both bounds, inclusive", day(-7), day(-5), []string{sids[3], sids[2], sids[1]}},
		{"start only", day(-2), time.Time{}, []string{sids[6], sids[5]}},
		{"end only", time.Time{}, day(-10), []string{sids[0]}},
		{"nothing in range", day(1), day(2), nil},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			var got []string
			pages := 0
			for p, err := range b.client.Conversations.Pages(ctx, b.acct.ServiceSID, ConversationListParams{StartDate: tc.start, EndDate: tc.end, PageSize: 1}) {
				require.NoError(t, err)
				pages++
				require.Equal(t, "conversations", p.Key)
				for _, cv := range p.Conversations {
					got = append(got, cv.SID)
					require.False(t, !tc.start.IsZero() && cv.DateCreated.Before(tc.start))
					require.False(t, !tc.end.IsZero() && cv.DateCreated.After(tc.end))
				}
			}
			require.Equal(t, tc.want, got)
			require.Equal(t, max(1, len(tc.want)), pages, "one request per page, then next_page_url is null")
		})
	}
}

func TestConversationsPageResumesFromStoredURL(t *testing.T) {
	t.Parallel()
	b := setupEmu(t, twiliotest.Config{})
	sids := b.addConversations(t, emuNow.Add(-3*time.Hour), emuNow.Add(-2*time.Hour), emuNow.Add(-time.Hour))
	ctx := t.Context()
	first, err := b.client.Conversations.ListURL(b.acct.ServiceSID, ConversationListParams{PageSize: 2})
	require.NoError(t, err)
	require.Equal(t, b.srv.URL()+"/v1/Services/"+b.acct.ServiceSID+"/Conversations?PageSize=2", first)
	page, err := b.client.Conversations.Page(ctx, first)
	require.NoError(t, err)
	require.Len(t, page.Conversations, 2)
	require.NotEmpty(t, page.NextPageURL)
	rest := collect(t, func(yield func(*ConversationPage, error) bool) {
		for p, err := range b.client.Conversations.PagesFrom(ctx, page.NextPageURL) {
			if !yield(p, err) {
				return
			}
		}
	})
	require.Len(t, rest, 1)
	require.Equal(t, sids[2], rest[0].Conversations[0].SID)
	require.Empty(t, rest[0].NextPageURL)

	for _, params := range []ConversationListParams{{PageSize: 101}, {PageSize: -1}, {State: "open"},
		{StartDate: emuNow, EndDate: emuNow.Add(-time.Second)}} {
		_, err := b.client.Conversations.ListURL("", params)
		require.Error(t, err, "%+v", params)
	}
	_, err = b.client.Conversations.ListURL("IS123", ConversationListParams{})
	require.ErrorIs(t, err, ErrInvalidSID)
}

func TestConversationMessagesOrderFieldsAndPaging(t *testing.T) {
	t.Parallel()
	b := setupEmu(t, twiliotest.Config{})
	ch := b.addConversations(t, emuNow.Add(-time.Hour))[0]
	var want []twiliotest.ConversationMessageInfo
	for i := range 5 {
		opts := twiliotest.ConversationMessageOptions{Author: "agent_ana", Body: "hi " + string(rune('a'+i)), DateCreated: emuNow.Add(time.Duration(i-5) * time.Minute)}
		if i%2 == 1 {
			opts.Media = []twiliotest.MediaOptions{{ContentType: "image/png", Size: 1234, Filename: "p.png"}, {Size: 10}}
		}
		m, err := b.srv.AddConversationMessage(b.acct.SID, ch, opts)
		require.NoError(t, err)
		want = append(want, m)
	}
	ctx := t.Context()
	for _, order := range []Order{"", OrderAsc, OrderDesc} {
		got := collect(t, b.client.ConversationMessages.All(ctx, b.acct.ServiceSID, ch, ConversationMessageListParams{Order: order, PageSize: 2}))
		require.Len(t, got, len(want))
		if order == OrderDesc {
			slices.Reverse(got)
		}
		for i, m := range got {
			require.Equal(t, want[i].SID, m.SID)
			require.Equal(t, int64(i), m.Index)
			require.Equal(t, ch, m.ConversationSID)
			require.Equal(t, b.acct.ServiceSID, m.ChatServiceSID)
			require.Equal(t, "agent_ana", m.Author)
			require.Equal(t, "{}", m.Attributes)
			require.True(t, m.DateCreated.Equal(want[i].DateCreated), "%s vs %s", m.DateCreated, want[i].DateCreated)
			require.Len(t, m.Media, len(want[i].MediaSIDs))
			for j, md := range m.Media {
				info, ok := b.srv.Media(want[i].MediaSIDs[j])
				require.True(t, ok)
				require.Equal(t, info.SID, md.SID)
				require.Equal(t, info.Size, md.Size)
				require.Equal(t, info.ContentType, md.ContentType)
				require.Equal(t, info.Filename, md.Filename)
			}
		}
	}
	require.Contains(t, b.hosts.paths(), "GET /v1/Services/"+b.acct.ServiceSID+"/Conversations/"+ch+"/Messages")

	one, err := b.client.ConversationMessages.Get(ctx, b.acct.ServiceSID, ch, want[1].SID)
	require.NoError(t, err)
	require.Equal(t, want[1].SID, one.SID)
	require.Len(t, one.Media, 2)
	require.Equal(t, "p.png", one.Media[0].Filename)

	_, err = b.client.ConversationMessages.ListURL(b.acct.ServiceSID, ch, ConversationMessageListParams{Order: "sideways"})
	require.Error(t, err)
	_, err = b.client.ConversationMessages.Get(ctx, b.acct.ServiceSID, ch, want[1].MediaSIDs[0])
	require.ErrorIs(t, err, ErrInvalidSID)
}

func TestConversationMessageDeleteIsGuardedAndGone(t *testing.T) {
	t.Parallel()
	b := setupEmu(t, twiliotest.Config{})
	ch := b.addConversations(t, emuNow.Add(-time.Hour))[0]
	m, err := b.srv.AddConversationMessage(b.acct.SID, ch, twiliotest.ConversationMessageOptions{
		Media: []twiliotest.MediaOptions{{Size: 10}, {Size: 20}}})
	require.NoError(t, err)
	ctx := t.Context()

	hold := errors.New("a hold covers it")
	err = b.client.ConversationMessages.Delete(ctx, b.acct.ServiceSID, ch, m.SID, WithGuard(func(context.Context) (time.Time, error) {
		return time.Time{}, hold
	}))
	require.ErrorIs(t, err, hold)
	info, _ := b.srv.ConversationMessage(m.SID)
	require.False(t, info.Deleted, "a vetoed DELETE is never sent")
	require.NotContains(t, b.hosts.paths(), "DELETE /v1/Services/"+b.acct.ServiceSID+"/Conversations/"+ch+"/Messages/"+m.SID)

	calls := 0
	require.NoError(t, b.client.ConversationMessages.Delete(ctx, b.acct.ServiceSID, ch, m.SID, WithGuard(func(context.Context) (time.Time, error) {
		calls++
		return time.Now().Add(time.Minute), nil
	})))
	require.Equal(t, 1, calls)
	info, _ = b.srv.ConversationMessage(m.SID)
	require.True(t, info.Deleted)

	err = b.client.ConversationMessages.Delete(ctx, b.acct.ServiceSID, ch, m.SID)
	require.True(t, IsGone(err), "a second DELETE is gone: %v", err)
	_, err = b.client.ConversationMessages.Get(ctx, b.acct.ServiceSID, ch, m.SID)
	require.True(t, IsGone(err), "%v", err)
	for _, sid := range m.MediaSIDs {
		_, err := b.client.MCS.Get(ctx, b.acct.ServiceSID, sid)
		require.True(t, IsGone(err), "the message's media went with it: %v", err)
	}
}
