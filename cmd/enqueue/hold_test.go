package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/internal/e2etest"
	"github.com/mediasync/mediasync/internal/testenv"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

func newObjectLockDeployment(t *testing.T) *deployment {
	t.Helper()
	return &deployment{Deployment: e2etest.New(t, e2etest.Options{Bucket: []testenv.BucketOption{testenv.WithObjectLock()}}),
		logs: &e2etest.LogBuffer{}}
}

// A worker whose pool has one connection archives and applies several
// legal holds at once: no task holds the connection while it waits for
// another one, for Redis or for S3. Before, the first hold:apply kept a
// cursor open while asking the pool again, and the worker stopped.
func TestHoldsAndArchivingOnOneConnection(t *testing.T) {
	t.Parallel()
	d := newObjectLockDeployment(t)
	d.Env["DATABASE_URL"] = d.DBURL + "&pool_max_conns=1"
	day := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	var customers []string
	var msgs []twiliotest.MessageInfo
	for i := range 4 {
		customer := fmt.Sprintf("+1555010070%d", i)
		customers = append(customers, customer)
		for j := range 4 {
			m, err := d.Emu.AddMessage(d.Account.SID, twiliotest.MessageOptions{From: customer,
				DateSent: day.AddDate(0, 0, j/2).Add(time.Duration(j) * time.Minute), Media: []twiliotest.MediaOptions{{Size: 700}}})
			require.NoError(t, err)
			msgs = append(msgs, m)
		}
	}
	d.startWorker(t)
	code, out, errOut := d.cli(t, "backfill", "--since", "2026-06-01", "--until", "2026-06-02", "--wait")
	require.Equal(t, 0, code, "%s\n%s", out, errOut)

	// Four hold:apply tasks, and a backfill of the next day, at once.
	for _, c := range customers {
		code, _, errOut := d.cli(t, "hold", "add", "--reason", "case "+c, "--from", c)
		require.Equal(t, 0, code, errOut)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code = Main(ctx, []string{"backfill", "--since", "2026-06-02", "--until", "2026-06-03", "--wait"}, &stdout, &stderr, d.getenv)
	require.Equal(t, 0, code, "the worker stopped: %s\n%s", stdout.String(), stderr.String())
	require.Equal(t, "succeeded", e2etest.StatusValue(t, stdout.String(), "state"))
	for _, m := range msgs {
		testenv.WaitFor(t, 30*time.Second, "legal hold on "+m.MediaSIDs[0], func() bool { return d.legalHold(t, m) == "ON" })
	}
}

// hold list shows, per hold, how many of its objects S3 has not yet
// confirmed to carry its legal hold, and lists them, until a worker has set
// them.
func TestHoldListShowsUnconfirmedS3Holds(t *testing.T) {
	t.Parallel()
	d := newObjectLockDeployment(t)
	const customer = "+15550100888"
	msg, err := d.Emu.AddMessage(d.Account.SID, twiliotest.MessageOptions{From: customer,
		DateSent: time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC), Media: []twiliotest.MediaOptions{{Size: 900}}})
	require.NoError(t, err)
	stop := d.startWorker(t)
	code, out, errOut := d.cli(t, "message", msg.SID, "--wait")
	require.Equal(t, 0, code, "%s\n%s", out, errOut)
	stop() // no worker applies the hold yet

	code, _, errOut = d.cli(t, "hold", "add", "--reason", "case 9", "--from", customer)
	require.Equal(t, 0, code, errOut)
	unconfirmed := func() (perHold string, listed bool) {
		code, out, errOut := d.cli(t, "hold", "list")
		require.Equal(t, 0, code, errOut)
		lines := strings.Split(out, "\n")
		require.Contains(t, lines[0], "S3 UNCONFIRMED", out)
		fields := strings.Fields(lines[1])
		require.Equal(t, "1", fields[0], out)
		return fields[len(fields)-1], strings.Contains(out, msg.MediaSIDs[0])
	}
	n, listed := unconfirmed()
	require.Equal(t, "1", n, "the held object is not yet confirmed")
	require.True(t, listed, "and it is listed")
	require.Equal(t, "OFF", d.legalHold(t, msg))

	d.startWorker(t)
	testenv.WaitFor(t, 30*time.Second, "the S3 legal hold confirmed", func() bool { n, listed := unconfirmed(); return n == "0" && !listed })
	require.Equal(t, "ON", d.legalHold(t, msg))
}
