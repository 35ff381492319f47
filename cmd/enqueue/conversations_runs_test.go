package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/internal/e2etest"
	"github.com/mediasync/mediasync/internal/testenv"
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
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	d.Env["HTTP_ADDR"] = addr
	stop := d.startWorker(t)
	delete(d.Env, "HTTP_ADDR")

	code, out, errOut := d.cli(t, "backfill", "--source", "conversations", "--since", "2026-03-01", "--until", "2026-03-03", "--wait")
	require.Equal(t, 1, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	id := e2etest.StatusValue(t, out, "run")
	// The failed media is counted under its source.
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	metrics, err := io.ReadAll(resp.Body)
	require.NoError(t, resp.Body.Close())
	require.NoError(t, err)
	require.Contains(t, string(metrics), `mediasync_media_total{result="failed",source="conversations"} 1`+"\n")
	require.NotContains(t, string(metrics), `mediasync_media_total{result="failed",source="messaging"} 1`)

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

// policy list --json names each policy's source and, for Conversations,
// the services it lists.
func TestPolicyListJSONNamesSourceAndServices(t *testing.T) {
	t.Parallel()
	db := testenv.NewDatabase(t)
	rds := testenv.NewRedis(t)
	env := map[string]string{
		"TWILIO_ACCOUNT_SID":  "AC0123456789abcdef0123456789abcdef",
		"DATABASE_URL":        db.URL,
		"REDIS_URL":           rds.URL,
		"MEDIASYNC_NAMESPACE": rds.Namespace,
	}
	cli := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		code := Main(t.Context(), args, &out, &errb, func(k string) string { return env[k] })
		require.Equal(t, 0, code, "%v: %s", args, errb.String())
		return out.String()
	}
	const svc = "IS0123456789abcdef0123456789abcdef"
	cli("policy", "set", "chats", "--schedule", "@every 24h", "--source", "conversations", "--service", svc)
	cli("policy", "set", "mms", "--schedule", "@every 24h")
	var pd struct {
		Policies []policyJSON `json:"policies"`
	}
	dec := json.NewDecoder(strings.NewReader(cli("policy", "list", "--json")))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&pd))
	got := map[string]policyJSON{}
	for _, p := range pd.Policies {
		got[p.Name] = p
	}
	require.Equal(t, "conversations", got["chats"].Source)
	require.Equal(t, []string{svc}, got["chats"].Services)
	require.Equal(t, "messaging", got["mms"].Source)
	require.Empty(t, got["mms"].Services)
}

// `enqueue cancel` in the middle of a Conversations backfill --delete:
// once it returns, Twilio receives no DELETE of a conversation message of
// the run (catalog.LeaseRunDelete refuses the cancelled run), and no more
// requests at all once the tasks in flight end; the run ends cancelled,
// and what the catalog says deleted Twilio deleted.
func TestCancelMidConversationsRun(t *testing.T) {
	t.Parallel()
	d := &deployment{Deployment: e2etest.New(t, e2etest.Options{Emulator: twiliotest.Config{Seed: 7, Faults: twiliotest.Faults{
		DeleteLatency: 200 * time.Millisecond,
	}}}), logs: &e2etest.LogBuffer{}}
	_, err := d.Emu.Generate(d.Account.SID, twiliotest.Dataset{
		Conversations: 40, ConversationMessages: 3, MaxConversationMedia: 1,
		Start: exportStart, End: exportStart.AddDate(0, 0, 2), MinMediaSize: 200, MaxMediaSize: 2 << 10,
	})
	require.NoError(t, err)
	all, _ := d.ConversationMediaIn(exportStart, exportStart.AddDate(0, 0, 2))
	require.Greater(t, len(all), 30)
	// One request at a time: the run is still deleting when it is cancelled.
	d.Env["TWILIO_MAX_CONCURRENCY"] = "1"
	d.startWorker(t)

	done := make(chan int, 1)
	go func() {
		code, _, _ := d.cli(t, "backfill", "--source", "conversations", "--since", "2026-03-01", "--until", "2026-03-03", "--delete", "--wait")
		done <- code
	}()
	require.Eventually(t, func() bool { return len(d.Emu.Deletes(0)) >= 3 }, time.Minute, 20*time.Millisecond)
	var rd runsDoc
	d.cliJSON(t, &rd, "runs", "--state", "running")
	require.Len(t, rd.Runs, 1)
	id := rd.Runs[0].ID
	require.Equal(t, "conversations", rd.Runs[0].Source)

	code, out, errOut := d.cli(t, "cancel", id)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	returned := time.Now()
	deletes := len(d.Emu.Deletes(0))
	require.Equal(t, 1, <-done, "the backfill's --wait says the run did not succeed")

	time.Sleep(3 * time.Second)
	requests := d.Emu.Stats().Requests
	time.Sleep(2 * time.Second)
	require.Equal(t, requests, d.Emu.Stats().Requests, "the cancelled run still talks to Twilio")
	after := d.Emu.Deletes(0)
	for _, del := range after {
		require.False(t, del.Time.After(returned), "DELETE of message %s at %s, after cancel returned at %s", del.MessageSID, del.Time, returned)
	}
	require.Equal(t, deletes, len(after))
	require.Less(t, len(after), len(all), "the run was cancelled before it deleted everything")
	var rowsDeleted int
	require.NoError(t, d.Pool.QueryRow(t.Context(), `SELECT count(*) FROM media WHERE state = 'deleted'`).Scan(&rowsDeleted))
	require.LessOrEqual(t, rowsDeleted, len(after))
	var st statusJSON
	d.cliJSON(t, &st, "status", id)
	require.Equal(t, "cancelled", st.Run.State)
	if early, _ := d.EarlyDeletes(); len(early) > 0 {
		t.Fatalf("DELETEs before the copy was in S3: %v", early)
	}
}

// verify re-reads the Conversations media a run archived as it does
// Messaging ones, each with its message's archived record: each found ok;
// a media overwritten in S3 is found and named, and so is a record
// overwritten (against each media of its message, which a delete would
// otherwise take with it).
func TestVerifyCoversConversationsMedia(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	_, err := d.Emu.Generate(d.Account.SID, twiliotest.Dataset{
		Conversations: 6, ConversationMessages: 3, MaxConversationMedia: 2,
		Start: exportStart, End: exportStart.AddDate(0, 0, 2), MinMediaSize: 200, MaxMediaSize: 8 << 10,
	})
	require.NoError(t, err)
	all, _ := d.ConversationMediaIn(exportStart, exportStart.AddDate(0, 0, 2))
	require.NotEmpty(t, all)
	d.startWorker(t)
	code, out, errOut := d.cli(t, "backfill", "--source", "conversations", "--since", "2026-03-01", "--until", "2026-03-03", "--wait")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)

	code, out, errOut = d.cli(t, "verify", "--since", "2026-03-01", "--until", "2026-03-03", "--wait")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Equal(t, fmt.Sprint(len(all)), e2etest.StatusValue(t, out, "objects ok"), out)

	var corrupt string
	for sid := range all {
		if corrupt == "" || sid < corrupt {
			corrupt = sid
		}
	}
	key, _, err := d.ExpectedConversationObject(corrupt)
	require.NoError(t, err)
	md, _ := d.Emu.Media(corrupt)
	_, err = d.S3Client.PutObject(t.Context(), &s3.PutObjectInput{
		Bucket: aws.String(d.Bucket), Key: aws.String(key), Body: bytes.NewReader(bytes.Repeat([]byte{0xA5}, int(md.Size))),
	})
	require.NoError(t, err)
	// Another message's record, overwritten with other bytes of its size.
	var recMsg, recKey string
	var recSize int
	require.NoError(t, d.Pool.QueryRow(t.Context(), `
		SELECT sid, record_key, record_size FROM messages
		WHERE source = 'conversations' AND record_key IS NOT NULL AND sid <> $1 ORDER BY sid LIMIT 1`, all[corrupt]).
		Scan(&recMsg, &recKey, &recSize))
	_, err = d.S3Client.PutObject(t.Context(), &s3.PutObjectInput{
		Bucket: aws.String(d.Bucket), Key: aws.String(recKey), Body: bytes.NewReader(bytes.Repeat([]byte{' '}, recSize)),
	})
	require.NoError(t, err)
	recInfo, _ := d.Emu.ConversationMessage(recMsg)
	require.NotEmpty(t, recInfo.MediaSIDs)

	code, out, errOut = d.cli(t, "verify", "--since", "2026-03-01", "--until", "2026-03-03", "--wait")
	require.Equal(t, 1, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Equal(t, fmt.Sprint(1+len(recInfo.MediaSIDs)), e2etest.StatusValue(t, out, "mismatch"), out)
	require.Contains(t, errOut, "does not match: "+corrupt+": mismatch")
	require.Contains(t, errOut, "does not match: "+recInfo.MediaSIDs[0]+": mismatch: record of message "+recMsg+": archived object "+recKey+" was altered")
}

// A Conversations run whose listing of its service's conversations failed
// is retried by listing that service again: `failures` names the window,
// and the retry archives every media.
func TestRetryOfAConversationsRunWhoseListingFailed(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	_, err := d.Emu.Generate(d.Account.SID, twiliotest.Dataset{
		Conversations: 5, ConversationMessages: 2, MaxConversationMedia: 2,
		Start: exportStart, End: exportStart.AddDate(0, 0, 2), MinMediaSize: 200, MaxMediaSize: 4 << 10,
	})
	require.NoError(t, err)
	all, _ := d.ConversationMediaIn(exportStart, exportStart.AddDate(0, 0, 2))
	require.NotEmpty(t, all)
	var refuse atomic.Bool
	refuse.Store(true)
	proxy := d.ProxyTwilio(t, func(w http.ResponseWriter, r *http.Request) bool {
		if refuse.Load() && r.Method == http.MethodGet && r.URL.Path == "/v1/Conversations" {
			refuseTwilio(w)
			return true
		}
		return false
	})
	d.Env["TWILIO_CONVERSATIONS_URL"] = proxy.URL
	stop := d.startWorker(t)
	code, out, errOut := d.cli(t, "backfill", "--source", "conversations", "--since", "2026-03-01", "--until", "2026-03-03", "--wait")
	require.Equal(t, 1, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	id := e2etest.StatusValue(t, out, "run")
	var fd failuresDoc
	d.cliJSON(t, &fd, "failures", id)
	require.Len(t, fd.Failures, 1)
	require.Equal(t, "window", fd.Failures[0].Kind)

	stop()
	refuse.Store(false)
	code, out, errOut = d.cli(t, "retry", id)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	d.startWorker(t)
	code, out, errOut = d.cli(t, "status", runID(t, out), "--wait")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	d.CheckConversationsArchived(t, all, "archived")
}
