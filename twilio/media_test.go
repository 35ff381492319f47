package twilio

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func mediaPath(msg, sid string) string {
	return "/2010-04-01/Accounts/" + testAccount + "/Messages/" + msg + "/Media/" + sid + ".json"
}

func TestMediaGet(t *testing.T) {
	t.Parallel()
	b := setup(t, newScript(t, step{uri: mediaPath(testMessage, testMedia), body: mediaJSON(testMessage, testMedia)}))

	m, err := b.client.Media.Get(t.Context(), testMessage, testMedia)
	require.NoError(t, err)
	require.Equal(t, Media{
		SID:         testMedia,
		AccountSID:  testAccount,
		ParentSID:   testMessage,
		ContentType: "image/jpeg",
		DateCreated: Time{time.Date(2015, 8, 16, 15, 53, 54, 0, time.UTC)},
		DateUpdated: Time{time.Date(2015, 8, 16, 15, 53, 55, 0, time.UTC)},
		URI:         mediaPath(testMessage, testMedia),
	}, *m)
}

func TestMediaAllAcrossPages(t *testing.T) {
	t.Parallel()
	first := mediaListPath(testMessage) + "?PageSize=1"
	second := mediaListPath(testMessage) + "?PageSize=1&Page=1&PageToken=PA" + testMedia
	b := setup(t, newScript(t,
		step{uri: first, body: pageJSON("media_list", []string{mediaJSON(testMessage, testMedia)}, 0, 1, first, second)},
		step{uri: second, body: pageJSON("media_list", []string{mediaJSON(testMessage, testMedia2)}, 1, 1, second, "")},
	))

	var sids []string
	for m, err := range b.client.Media.All(t.Context(), testMessage, MediaListParams{PageSize: 1}) {
		require.NoError(t, err)
		sids = append(sids, m.SID)
	}
	require.Equal(t, []string{testMedia, testMedia2}, sids)
}

func TestMediaPageAndPagesFromCursor(t *testing.T) {
	t.Parallel()
	second := mediaListPath(testMessage) + "?PageSize=1&Page=1&PageToken=PA" + testMedia
	third := mediaListPath(testMessage) + "?PageSize=1&Page=2&PageToken=PA" + testMedia2
	b := setup(t, newScript(t,
		step{uri: second, body: pageJSON("media_list", []string{mediaJSON(testMessage, testMedia2)}, 1, 1, second, third)},
		step{uri: second, body: pageJSON("media_list", []string{mediaJSON(testMessage, testMedia2)}, 1, 1, second, third)},
		step{uri: third, body: pageJSON("media_list", nil, 2, 1, third, "")},
	))

	p, err := b.client.Media.Page(t.Context(), second)
	require.NoError(t, err)
	require.Equal(t, third, p.NextPageURI)
	require.Equal(t, testMedia2, p.Media[0].SID)

	var n int
	for p, err := range b.client.Media.PagesFrom(t.Context(), second) {
		require.NoError(t, err)
		n += len(p.Media)
	}
	require.Equal(t, 1, n)
}

func TestMediaDelete(t *testing.T) {
	t.Parallel()
	b := setup(t, newScript(t,
		step{method: http.MethodDelete, uri: mediaPath(testMessage, testMedia), status: http.StatusNoContent},
		step{method: http.MethodDelete, uri: mediaPath(testMessage, testMedia), status: http.StatusNotFound,
			body: `{"code": 20404, "message": "The requested resource was not found", "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404}`},
	))

	require.NoError(t, b.client.Media.Delete(t.Context(), testMessage, testMedia))
	err := b.client.Media.Delete(t.Context(), testMessage, testMedia)
	require.True(t, IsNotFound(err), "a second delete is Twilio's 404: %v", err)
	acquired, inFlight := b.limiter.held()
	require.Equal(t, 2, acquired)
	require.Zero(t, inFlight)
}

func TestMediaDeleteRetriesServerError(t *testing.T) {
	t.Parallel()
	b := setup(t, newScript(t,
		step{method: http.MethodDelete, uri: mediaPath(testMessage, testMedia), status: http.StatusBadGateway},
		step{method: http.MethodDelete, uri: mediaPath(testMessage, testMedia), status: http.StatusNoContent},
	))
	require.NoError(t, b.client.Media.Delete(t.Context(), testMessage, testMedia))
	require.Len(t, b.events.all(), 1)
}

func TestMediaValidatesSIDs(t *testing.T) {
	t.Parallel()
	s := newScript(t)
	b := setup(t, s)
	_, err := b.client.Media.Get(t.Context(), testMessage, testMessage)
	require.ErrorContains(t, err, "Media.Get: media SID")
	err = b.client.Media.Delete(t.Context(), testMedia, testMedia)
	require.ErrorContains(t, err, "Media.Delete: message SID")
	for _, err := range b.client.Media.Pages(t.Context(), "nope", MediaListParams{}) {
		require.ErrorContains(t, err, `Media.ListURI: message SID "nope"`)
	}
	require.Zero(t, s.requests())
}

// A guard is asked before every attempt, holding the limiter slot: a veto
// sends nothing, and a past deadline keeps the request from being written.
func TestMediaDeleteGuard(t *testing.T) {
	t.Parallel()
	s := newScript(t,
		step{method: http.MethodDelete, uri: mediaPath(testMessage, testMedia), status: http.StatusBadGateway},
		step{method: http.MethodDelete, uri: mediaPath(testMessage, testMedia), status: http.StatusNoContent},
	)
	b := setup(t, s)
	var asked []int
	guard := WithGuard(func(context.Context) (time.Time, error) {
		_, inFlight := b.limiter.held()
		asked = append(asked, inFlight)
		return time.Now().Add(time.Minute), nil
	})
	require.NoError(t, b.client.Media.Delete(t.Context(), testMessage, testMedia, guard))
	require.Equal(t, []int{1, 1}, asked, "asked once per attempt, each holding its slot")

	veto := errors.New("held")
	err := b.client.Media.Delete(t.Context(), testMessage, testMedia,
		WithGuard(func(context.Context) (time.Time, error) { return time.Time{}, veto }))
	require.ErrorIs(t, err, veto)
	err = b.client.Media.Delete(t.Context(), testMessage, testMedia,
		WithGuard(func(context.Context) (time.Time, error) { return time.Now().Add(-time.Second), nil }))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, 2, s.requests(), "nothing sent after a veto or a passed deadline")
	_, inFlight := b.limiter.held()
	require.Zero(t, inFlight)
}
