package twiliotest_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/twilio/twiliotest"
)

func TestDeleteMediaIsGoneEverywhere(t *testing.T) {
	t.Parallel()
	b := setup(t, twiliotest.Config{})
	m := addMMS(t, b, twiliotest.MediaOptions{Size: 100}, twiliotest.MediaOptions{Size: 200}, twiliotest.MediaOptions{Size: 300})
	victim := m.MediaSIDs[1]

	// A signed URL handed out before the delete stops working too.
	resp, _ := b.request(t, http.MethodGet, b.mediaPath(m.SID, victim, ""), true)
	signed := resp.Header.Get("Location")

	b.srv.SetNow(fixedNow.Add(time.Minute))
	resp, body := b.request(t, http.MethodDelete, b.mediaPath(m.SID, victim, ".json"), true)
	requireTwilioHeaders(t, resp)
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Empty(t, body)

	for _, ext := range []string{".json", ".xml", ""} {
		resp, body := b.request(t, http.MethodGet, b.mediaPath(m.SID, victim, ext), true)
		require.Equal(t, http.StatusNotFound, resp.StatusCode, "GET %q after delete", ext)
		if ext != ".xml" {
			requireTwilioError(t, resp, body, http.StatusNotFound, 20404)
		}
	}
	resp, body = b.request(t, http.MethodDelete, b.mediaPath(m.SID, victim, ".json"), true)
	requireTwilioError(t, resp, body, http.StatusNotFound, 20404)
	resp, _ = b.request(t, http.MethodGet, signed, false)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	var list struct {
		MediaList []struct {
			SID string `json:"sid"`
		} `json:"media_list"`
	}
	b.getJSON(t, "/2010-04-01/Accounts/"+b.acct.SID+"/Messages/"+m.SID+"/Media.json", &list)
	require.Len(t, list.MediaList, 2)
	for _, md := range list.MediaList {
		require.NotEqual(t, victim, md.SID)
	}
	var msg struct {
		NumMedia string `json:"num_media"`
	}
	b.getJSON(t, "/2010-04-01/Accounts/"+b.acct.SID+"/Messages/"+m.SID+".json", &msg)
	require.Equal(t, "2", msg.NumMedia)

	deletes := b.srv.Deletes(0)
	require.Equal(t, []twiliotest.Delete{{MediaSID: victim, MessageSID: m.SID, AccountSID: b.acct.SID, Time: fixedNow.Add(time.Minute)}}, deletes)
	require.Empty(t, b.srv.Deletes(1))
	info, ok := b.srv.Media(victim)
	require.True(t, ok)
	require.True(t, info.Deleted)
	require.Len(t, expected(t, b.srv, victim), 200, "the expected bytes stay readable for checking an archive")
	require.Equal(t, int64(1), b.srv.Stats().Deletes)
}

func TestDeleteMessageDeletesItsMedia(t *testing.T) {
	t.Parallel()
	b := setup(t, twiliotest.Config{})
	m := addMMS(t, b, twiliotest.MediaOptions{Size: 1}, twiliotest.MediaOptions{Size: 2})
	resp, _ := b.request(t, http.MethodDelete, "/2010-04-01/Accounts/"+b.acct.SID+"/Messages/"+m.SID+".json", true)
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	resp, body := b.request(t, http.MethodGet, "/2010-04-01/Accounts/"+b.acct.SID+"/Messages/"+m.SID+"/Media.json", true)
	requireTwilioError(t, resp, body, http.StatusNotFound, 20404)
	resp, body = b.request(t, http.MethodGet, b.mediaPath(m.SID, m.MediaSIDs[0], ".json"), true)
	requireTwilioError(t, resp, body, http.StatusNotFound, 20404)
	require.Len(t, b.srv.Deletes(0), 2)
	var p messagePage
	b.getJSON(t, b.messagesPath(), &p)
	require.Empty(t, p.Messages)
}

func TestDeleteNeedsTheRightMessageAndAccount(t *testing.T) {
	t.Parallel()
	b := setup(t, twiliotest.Config{})
	m1 := addMMS(t, b, twiliotest.MediaOptions{Size: 1})
	m2 := addMMS(t, b, twiliotest.MediaOptions{Size: 1})
	resp, body := b.request(t, http.MethodDelete, b.mediaPath(m2.SID, m1.MediaSIDs[0], ".json"), true)
	requireTwilioError(t, resp, body, http.StatusNotFound, 20404)

	other, err := b.srv.AddAccount(twiliotest.AccountOptions{})
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodDelete, b.srv.URL()+b.mediaPath(m1.SID, m1.MediaSIDs[0], ".json"), nil)
	require.NoError(t, err)
	req.SetBasicAuth(other.SID, other.AuthToken)
	resp, body = b.send(t, req)
	requireTwilioError(t, resp, body, http.StatusUnauthorized, 20003)
	require.Empty(t, b.srv.Deletes(0))
}

// The data iterators hold no lock while the loop runs, so a test can call
// the API (here: delete through it) from inside the loop.
func TestDeleteWhileIterating(t *testing.T) {
	t.Parallel()
	b := setup(t, twiliotest.Config{})
	_, err := b.srv.Generate(b.acct.SID, twiliotest.Dataset{Messages: 5, NoMediaShare: -1, MaxMediaSize: 1024})
	require.NoError(t, err)
	n := 0
	for m := range b.srv.Messages(b.acct.SID) {
		for _, sid := range m.MediaSIDs {
			resp, _ := b.request(t, http.MethodDelete, b.mediaPath(m.SID, sid, ".json"), true)
			require.Equal(t, http.StatusNoContent, resp.StatusCode)
			n++
		}
	}
	for md := range b.srv.AllMedia(b.acct.SID) {
		require.True(t, md.Deleted)
	}
	require.Len(t, b.srv.Deletes(0), n)
}
