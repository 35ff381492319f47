package main

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
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

// A held media is never deleted from Twilio, whichever command asks: a
// policy with --delete-after, backfill --delete, message --delete. Its copy
// is archived all the same. After release, the next run deletes it. The
// audit log records every delete, one for one with the emulator's own
// delete log, and the hold and its release; its chain verifies.
func TestHoldsStopEveryDeleteUntilReleased(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	when := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	const customer, other = "+15550100777", "+15550100888"
	held1, err := d.Emu.AddMessage(d.Account.SID, twiliotest.MessageOptions{From: customer, DateSent: when,
		Media: []twiliotest.MediaOptions{{Size: 3000}, {Size: 4000}}})
	require.NoError(t, err)
	held2, err := d.Emu.AddMessage(d.Account.SID, twiliotest.MessageOptions{From: customer, DateSent: when.Add(time.Hour),
		Media: []twiliotest.MediaOptions{{Size: 5000}}})
	require.NoError(t, err)
	free, err := d.Emu.AddMessage(d.Account.SID, twiliotest.MessageOptions{From: other, DateSent: when,
		Media: []twiliotest.MediaOptions{{Size: 6000}}})
	require.NoError(t, err)
	d.startWorker(t)

	code, out, errOut := d.cli(t, "--actor", "legal@example.com", "hold", "add", "--reason", "case 42", "--from", customer)
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "hold 1 placed\n", out)

	isDeleted := func(sid string) bool { md, _ := d.Emu.Media(sid); return md.Deleted }
	heldMedia := append(append([]string{}, held1.MediaSIDs...), held2.MediaSIDs...)

	// 1. message --delete
	code, out, errOut = d.cli(t, "message", held1.SID, "--delete", "--wait")
	require.Equal(t, 0, code, "%s\n%s", out, errOut)
	require.Equal(t, "2 (archived; not deleted: under legal hold)", e2etest.StatusValue(t, out, "media held"))
	// 2. backfill --delete over the day
	code, out, errOut = d.cli(t, "backfill", "--since", "2026-05-04", "--until", "2026-05-05", "--delete", "--wait")
	require.Equal(t, 0, code, "%s\n%s", out, errOut)
	require.Equal(t, "1", e2etest.StatusValue(t, out, "media deleted"), "only the free media")
	require.True(t, isDeleted(free.MediaSIDs[0]))
	// 3. a policy that deletes everything a day old
	code, _, errOut = d.cli(t, "policy", "set", "retain", "--schedule", "0 3 1 1 *", "--delete-after", "1d", "--start", "2026-05-01")
	require.Equal(t, 0, code, errOut)
	code, out, errOut = d.cli(t, "policy", "run", "retain", "--wait")
	require.Equal(t, 0, code, "%s\n%s", out, errOut)
	for _, sid := range heldMedia {
		require.False(t, isDeleted(sid), "held media %s was deleted", sid)
	}
	d.CheckArchived(t, mapOf(held1, held2), "archived")

	// Release: the next run deletes them.
	code, _, errOut = d.cli(t, "--actor", "legal@example.com", "hold", "release", "1", "--reason", "case closed")
	require.Equal(t, 0, code, errOut)
	code, out, errOut = d.cli(t, "policy", "run", "retain", "--wait")
	require.Equal(t, 0, code, "%s\n%s", out, errOut)
	for _, sid := range heldMedia {
		require.True(t, isDeleted(sid), "released media %s not deleted", sid)
	}
	d.CheckArchived(t, mapOf(held1, held2), "deleted")
	early, _ := d.EarlyDeletes()
	require.Empty(t, early)

	// The audit log: one media.deleted per delete the emulator logged.
	var audited []string
	rows, err := d.Pool.Query(t.Context(), `SELECT subject FROM audit_log WHERE action = 'media.deleted' ORDER BY id`)
	require.NoError(t, err)
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		audited = append(audited, s)
	}
	require.NoError(t, rows.Err())
	var emulated []string
	for _, del := range d.Emu.Deletes(0) {
		emulated = append(emulated, del.MediaSID)
	}
	sort.Strings(audited)
	sort.Strings(emulated)
	require.Equal(t, emulated, audited)
	var holdRows int
	require.NoError(t, d.Pool.QueryRow(t.Context(), `SELECT count(*) FROM audit_log
		WHERE action IN ('hold.added', 'hold.released') AND actor = 'legal@example.com' AND subject = '1'`).Scan(&holdRows))
	require.Equal(t, 2, holdRows)

	code, out, errOut = d.cli(t, "audit", "verify")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "chain intact")
}

func mapOf(msgs ...twiliotest.MessageInfo) map[string]string {
	m := map[string]string{}
	for _, msg := range msgs {
		for _, sid := range msg.MediaSIDs {
			m[sid] = msg.SID
		}
	}
	return m
}

// The audit log refuses UPDATE and DELETE; and a row changed behind the
// database's back (trigger disabled) is named by `audit verify`, as is a
// removed one.
func TestAuditLogIsTamperEvident(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	for i := range 4 {
		code, _, errOut := d.cli(t, "--actor", "ops", "hold", "add", "--reason", fmt.Sprint("case ", i), "--to", "+15550100123")
		require.Equal(t, 0, code, errOut)
	}
	code, out, _ := d.cli(t, "audit", "verify")
	require.Equal(t, 0, code)
	require.Contains(t, out, "4 rows")

	ctx := context.Background()
	_, err := d.Pool.Exec(ctx, `UPDATE audit_log SET actor = 'someone else' WHERE id = 2`)
	require.ErrorContains(t, err, "append-only")
	_, err = d.Pool.Exec(ctx, `DELETE FROM audit_log WHERE id = 2`)
	require.ErrorContains(t, err, "append-only")

	_, err = d.Pool.Exec(ctx, `ALTER TABLE audit_log DISABLE TRIGGER audit_log_immutable;
		UPDATE audit_log SET details = '{"reason": "nothing to see"}' WHERE id = 3;
		ALTER TABLE audit_log ENABLE TRIGGER audit_log_immutable`)
	require.NoError(t, err)
	code, out, errOut := d.cli(t, "audit", "verify")
	require.Equal(t, 1, code, out)
	require.Contains(t, errOut, "broken at row 3")

	_, err = d.Pool.Exec(ctx, `ALTER TABLE audit_log DISABLE TRIGGER audit_log_immutable;
		UPDATE audit_log SET details = '{"reason": "case 2"}' WHERE id = 3;
		DELETE FROM audit_log WHERE id = 2;
		ALTER TABLE audit_log ENABLE TRIGGER audit_log_immutable`)
	require.NoError(t, err)
	code, _, errOut = d.cli(t, "audit", "verify")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "broken at row 3", "the row after the removed one")

	code, out, _ = d.cli(t, "audit", "--json")
	require.Equal(t, 0, code)
	require.Equal(t, 3, strings.Count(out, "\n"))
}

// Where the bucket has Object Lock, a held media's object carries an S3
// legal hold — whether it was archived before the hold was placed or after
// — and releasing the hold lifts it.
func TestHoldsSetS3LegalHolds(t *testing.T) {
	t.Parallel()
	d := &deployment{Deployment: e2etest.New(t, e2etest.Options{Bucket: []testenv.BucketOption{testenv.WithObjectLock()}}), logs: &e2etest.LogBuffer{}}
	when := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	const customer = "+15550100999"
	before, err := d.Emu.AddMessage(d.Account.SID, twiliotest.MessageOptions{From: customer, DateSent: when, Media: []twiliotest.MediaOptions{{Size: 1500}}})
	require.NoError(t, err)
	after, err := d.Emu.AddMessage(d.Account.SID, twiliotest.MessageOptions{From: customer, DateSent: when.Add(time.Hour), Media: []twiliotest.MediaOptions{{Size: 2500}}})
	require.NoError(t, err)
	d.startWorker(t)

	code, out, errOut := d.cli(t, "message", before.SID, "--wait")
	require.Equal(t, 0, code, "%s\n%s", out, errOut)
	legalHold := func(msg twiliotest.MessageInfo) string { return d.legalHold(t, msg) }
	require.Equal(t, "OFF", legalHold(before))

	code, _, errOut = d.cli(t, "hold", "add", "--reason", "case 7", "--from", customer)
	require.Equal(t, 0, code, errOut)
	testenv.WaitFor(t, 30*time.Second, "legal hold on the object archived before the hold", func() bool { return legalHold(before) == "ON" })

	code, out, errOut = d.cli(t, "message", after.SID, "--wait")
	require.Equal(t, 0, code, "%s\n%s", out, errOut)
	require.Equal(t, "ON", legalHold(after), "an object archived under a hold carries it at once")

	code, _, errOut = d.cli(t, "hold", "release", "1", "--reason", "done")
	require.Equal(t, 0, code, errOut)
	testenv.WaitFor(t, 30*time.Second, "legal holds lifted at release", func() bool { return legalHold(before) == "OFF" && legalHold(after) == "OFF" })
}

// legalHold reads the S3 legal hold of a message's first media's object.
func (d *deployment) legalHold(t *testing.T, msg twiliotest.MessageInfo) string {
	t.Helper()
	key, _, err := d.ExpectedObject(msg.SID, msg.MediaSIDs[0])
	require.NoError(t, err)
	out, err := d.S3Client.GetObjectLegalHold(t.Context(), &s3.GetObjectLegalHoldInput{Bucket: aws.String(d.Bucket), Key: aws.String(key)})
	if err != nil || out.LegalHold == nil {
		return "OFF"
	}
	return string(out.LegalHold.Status)
}

// With WORM on, the catalog records the retention S3 reports for each
// object once written, not the one the worker asked for; a server that
// applied none fails the run's first object (a message's record, issue
// #17) at once, naming why, and nothing is recorded as archived. The worker talks to the gateway through a proxy
// that changes the retention it reports (the write is signed; its answer
// is not): first a day longer than the gateway holds, then none.
func TestWORMRecordsTheRetentionS3Applied(t *testing.T) {
	t.Parallel()
	d := &deployment{Deployment: e2etest.New(t, e2etest.Options{Bucket: []testenv.BucketOption{testenv.WithObjectLock()}}), logs: &e2etest.LogBuffer{}}
	target, err := url.Parse(d.S3.Endpoint)
	require.NoError(t, err)
	var reportNone atomic.Bool
	gateway := httputil.NewSingleHostReverseProxy(target)
	gateway.Transport = d.S3.HTTPClient().Transport
	gateway.ModifyResponse = func(resp *http.Response) error {
		if _, ok := resp.Request.URL.Query()["retention"]; !ok || resp.Request.Method != http.MethodGet || resp.StatusCode != http.StatusOK {
			return nil
		}
		var ret struct { // the root is Retention on AWS, ObjectLockRetention on versitygw
			Mode            string
			RetainUntilDate time.Time
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if err := xml.Unmarshal(body, &ret); err != nil {
			return err
		}
		out := fmt.Sprintf(`<Retention><Mode>%s</Mode><RetainUntilDate>%s</RetainUntilDate></Retention>`,
			ret.Mode, ret.RetainUntilDate.Add(24*time.Hour).UTC().Format(time.RFC3339))
		if reportNone.Load() {
			resp.StatusCode = http.StatusNotFound
			out = `<Error><Code>NoSuchObjectLockConfiguration</Code><Message>none</Message></Error>`
		}
		resp.Body = io.NopCloser(strings.NewReader(out))
		resp.ContentLength = int64(len(out))
		resp.Header.Set("Content-Length", fmt.Sprint(len(out)))
		return nil
	}
	proxy := httptest.NewServer(gateway)
	t.Cleanup(proxy.Close)
	d.Env["ARCHIVE_URL"] = fmt.Sprintf("s3://%s/%s?region=%s&endpoint=%s&use_path_style=true", d.Bucket, d.Prefix, d.S3.Region, proxy.URL)
	d.Env["ARCHIVE_OBJECT_LOCK"], d.Env["ARCHIVE_RETENTION"] = "GOVERNANCE", "2d"

	when := time.Date(2026, 6, 2, 9, 0, 0, 0, time.UTC)
	longer, err := d.Emu.AddMessage(d.Account.SID, twiliotest.MessageOptions{DateSent: when, Media: []twiliotest.MediaOptions{{Size: 1500}}})
	require.NoError(t, err)
	none, err := d.Emu.AddMessage(d.Account.SID, twiliotest.MessageOptions{DateSent: when.Add(time.Hour), Media: []twiliotest.MediaOptions{{Size: 1500}}})
	require.NoError(t, err)
	d.startWorker(t)

	code, out, errOut := d.cli(t, "message", longer.SID, "--wait")
	require.Equal(t, 0, code, "%s\n%s", out, errOut)
	key, _, err := d.ExpectedObject(longer.SID, longer.MediaSIDs[0])
	require.NoError(t, err)
	held, err := d.S3Client.GetObjectRetention(t.Context(), &s3.GetObjectRetentionInput{Bucket: aws.String(d.Bucket), Key: aws.String(key)})
	require.NoError(t, err)
	var mode string
	var until time.Time
	require.NoError(t, d.Pool.QueryRow(t.Context(), `SELECT lock_mode, retain_until FROM media WHERE sid = $1`, longer.MediaSIDs[0]).Scan(&mode, &until))
	require.Equal(t, "GOVERNANCE", mode)
	require.True(t, until.Equal(aws.ToTime(held.Retention.RetainUntilDate).Add(24*time.Hour)),
		"catalog retains until %v; the store reported %v", until, aws.ToTime(held.Retention.RetainUntilDate).Add(24*time.Hour))

	reportNone.Store(true)
	code, out, errOut = d.cli(t, "message", none.SID, "--wait")
	require.Equal(t, 1, code, "%s\n%s", out, errOut)
	require.Contains(t, out, "S3 holds no retention")
	// The message's record is its first object (issue #17): it fails the
	// message, and its media is never archived.
	var archived int
	require.NoError(t, d.Pool.QueryRow(t.Context(), `SELECT count(*) FROM media WHERE sid = $1 AND state IN ('archived', 'deleted')`, none.MediaSIDs[0]).Scan(&archived))
	require.Zero(t, archived)
}
