package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/internal/e2etest"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// refuseTwilio answers a Twilio 400 with an error code: no retry fixes it.
func refuseTwilio(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = fmt.Fprint(w, `{"code": 20001, "message": "refused for the test", "more_info": "https://www.twilio.com/docs/errors/20001", "status": 400}`)
}

// A Conversations run that failed (MCS refused a media; Twilio refused the
// scan of a conversation) is retried as a Conversations run: `runs --json`
// and `failures` name its source and both failures, and the retry archives
// the refused media and the conversation's media without one Messaging
// request, and ends succeeded with every media archived.
func TestRetryOfAConversationsRunRetriesItsConversations(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	_, err := d.Emu.Generate(d.Account.SID, twiliotest.Dataset{
		Conversations: 8, ConversationMessages: 3, MaxConversationMedia: 2,
		Start: exportStart, End: exportStart.AddDate(0, 0, 2), MinMediaSize: 200, MaxMediaSize: 8 << 10,
	})
	require.NoError(t, err)
	all, _ := d.ConversationMediaIn(exportStart, exportStart.AddDate(0, 0, 2))
	require.NotEmpty(t, all)
	// One media refused by MCS, and every message of another conversation
	// refused by its listing.
	var badMedia, badConv string
	for media, msg := range all {
		info, _ := d.Emu.ConversationMessage(msg)
		if badMedia == "" || media < badMedia {
			badMedia = media
		}
		if badConv == "" || info.ConversationSID < badConv {
			badConv = info.ConversationSID
		}
	}
	if info, _ := d.Emu.ConversationMessage(all[badMedia]); info.ConversationSID == badConv {
		for media, msg := range all {
			if info, _ := d.Emu.ConversationMessage(msg); info.ConversationSID != badConv {
				badMedia = media
				break
			}
		}
	}
	var refuse atomic.Bool
	refuse.Store(true)
	proxy := d.ProxyTwilio(t, func(w http.ResponseWriter, r *http.Request) bool {
		if !refuse.Load() || r.Method != http.MethodGet {
			return false
		}
		if strings.HasSuffix(r.URL.Path, "/Media/"+badMedia) || strings.HasSuffix(r.URL.Path, "/Conversations/"+badConv+"/Messages") {
			refuseTwilio(w)
			return true
		}
		return false
	})
	d.Env["TWILIO_CONVERSATIONS_URL"] = proxy.URL
	d.Env["TWILIO_MCS_URL"] = proxy.URL
	stop := d.startWorker(t)

	code, out, errOut := d.cli(t, "backfill", "--source", "conversations", "--since", "2026-03-01", "--until", "2026-03-03", "--wait")
	require.Equal(t, 1, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	id := e2etest.StatusValue(t, out, "run")

	var rd runsDoc
	d.cliJSON(t, &rd, "runs", "--state", "failed")
	require.Len(t, rd.Runs, 1)
	require.Equal(t, "conversations", rd.Runs[0].Source)
	require.Equal(t, []string{""}, rd.Runs[0].Services, "the account's default service")
	var fd failuresDoc
	d.cliJSON(t, &fd, "failures", id)
	kinds := map[string]string{}
	for _, f := range fd.Failures {
		kinds[f.SID] = f.Kind
	}
	require.Equal(t, "media", kinds[badMedia], "failures: %+v", fd.Failures)
	require.Equal(t, "conversation", kinds[badConv], "failures: %+v", fd.Failures)

	stop()
	refuse.Store(false)
	code, out, errOut = d.cli(t, "retry", id)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	retry := runID(t, out)
	messagingBefore := 0
	for _, r := range d.Emu.Requests() {
		if strings.HasPrefix(r.Route, "messages.") || strings.HasPrefix(r.Route, "media.") {
			messagingBefore++
		}
	}
	d.startWorker(t)
	code, out, errOut = d.cli(t, "status", retry, "--wait")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	d.cliJSON(t, &rd, "runs", "--kind", "retry")
	require.Len(t, rd.Runs, 1)
	require.Equal(t, "conversations", rd.Runs[0].Source)
	require.Equal(t, id, rd.Runs[0].RetryOf)
	messaging := 0
	for _, r := range d.Emu.Requests() {
		if strings.HasPrefix(r.Route, "messages.") || strings.HasPrefix(r.Route, "media.") {
			messaging++
		}
	}
	require.Equal(t, messagingBefore, messaging, "the retry of a Conversations run made Messaging requests")
	d.CheckConversationsArchived(t, all, "archived")
}
