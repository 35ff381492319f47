package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mediasync/mediasync/internal/e2etest"
	"github.com/mediasync/mediasync/internal/testenv"
	"github.com/mediasync/mediasync/twilio"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// A worker killed with SIGKILL three times during a restore never makes
// the restore upload a media twice into the service: every media of the
// run ends restored (its new Media holds the archived bytes) or, when a
// kill fell between the upload and its commit, unconfirmed; none failed,
// none is left open, and no media was accepted (201) twice by MCS.
func TestRestoreSurvivesKill9WithoutDuplicates(t *testing.T) {
	t.Parallel()
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	t.Logf("kill moments drawn with seed %d", seed)

	d := e2etest.New(t, e2etest.Options{Emulator: twiliotest.Config{
		Faults: twiliotest.Faults{Latency: 30 * time.Millisecond},
	}})
	start := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	if _, err := d.Emu.Generate(d.Account.SID, twiliotest.Dataset{
		Messages: 150, Start: start, End: start.AddDate(0, 0, 2), MaxMediaPerMessage: 2, MinMediaSize: 1 << 10, MaxMediaSize: 64 << 10,
	}); err != nil {
		t.Fatal(err)
	}
	w := d.StartWorker(t)
	code, out, errOut := d.Enqueue(t, 4*time.Minute, "backfill", "--since", "2026-04-01", "--until", "2026-04-03", "--wait")
	if code != 0 {
		t.Fatalf("backfill: exit %d\n%s\n%s", code, out, errOut)
	}
	runID := strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])
	svc, err := d.Emu.AddService(d.Account.SID)
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut = d.Enqueue(t, time.Minute, "restore", "--run", runID, "--service", svc)
	if code != 0 {
		t.Fatalf("restore: exit %d\n%s\n%s", code, out, errOut)
	}
	id := strings.TrimSpace(out)
	var total int
	if err := d.Pool.QueryRow(t.Context(), `SELECT count(*) FROM run_media WHERE run_id = $1 AND state = 'archived'`, runID).Scan(&total); err != nil {
		t.Fatal(err)
	}

	uploads := func() int { return int(d.Emu.Stats().ByRoute["mcs.upload"]) }
	for i, share := range [][2]float64{{0.1, 0.3}, {0.4, 0.6}, {0.7, 0.85}} {
		threshold := int(float64(total) * (share[0] + (share[1]-share[0])*rng.Float64()))
		testenv.WaitFor(t, 3*time.Minute, "uploads under way", func() bool { return uploads() >= threshold }, workerLog(w.Logs))
		time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond)
		w.Kill()
		t.Logf("kill %d: %d uploads of %d media so far", i+1, uploads(), total)
		w = d.StartWorker(t)
	}
	// Exit 1 when a kill left an unconfirmed media: the restore says so.
	code, out, errOut = d.Enqueue(t, 6*time.Minute, "status", id, "--wait")
	if code != 0 && code != 1 {
		t.Fatalf("status --wait: exit %d\n%s\n%s\n%s", code, out, errOut, lastLines(w.Logs(), 40))
	}

	// MCS accepted each media at most once.
	accepted := map[string]int{}
	for _, r := range d.Emu.Requests() {
		if r.Route != "mcs.upload" || r.Status != 201 {
			continue
		}
		q, _ := url.ParseQuery(r.Query)
		accepted[q.Get("Filename")]++
	}
	for name, n := range accepted {
		if n > 1 {
			t.Errorf("media %s uploaded %d times", name, n)
		}
	}

	tw, err := twilio.New(d.Account.SID, twilio.WithAuthToken(d.Account.AuthToken), twilio.WithBaseURL(d.Emu.URL()), twilio.WithMCSURL(d.Emu.URL()))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := d.Pool.Query(t.Context(), `SELECT media_sid, state, coalesce(new_media_sid, '') FROM restore_media WHERE run_id = $1`, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	states := map[string]int{}
	for rows.Next() {
		var old, state, neu string
		if err := rows.Scan(&old, &state, &neu); err != nil {
			t.Fatal(err)
		}
		states[state]++
		if state != "restored" {
			continue
		}
		c, err := tw.MCS.Open(t.Context(), svc, neu)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		_, err = io.Copy(h, c.Body)
		c.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		want, err := d.Emu.SHA256(old)
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != want {
			t.Errorf("media %s restored as %s holds sha256 %s, want %s", old, neu, got, want)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("restore after 3 kills: %v of %d media; %d accepted by MCS", states, total, len(accepted))
	if states["restored"]+states["unconfirmed"] != total {
		t.Fatalf("media states %v, want %d restored or unconfirmed\n%s", states, total, out)
	}
	if states["unconfirmed"] == 0 && code != 0 {
		t.Fatalf("status --wait exit %d with every media restored\n%s", code, out)
	}
}
