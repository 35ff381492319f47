package jobs

import (
	"bytes"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/catalog"
)

// readStored (a verify run's read, and an export's) streams: reading a
// 64 MiB object back allocates a small fraction of it. And it tells a
// matching object from one of other bytes, of another size, or missing.
//
// Not parallel: the allocation count is the process's.
func TestReadStoredStreamsAndJudges(t *testing.T) {
	fs, err := archive.NewFileStore(t.TempDir())
	require.NoError(t, err)
	h := &Handlers{store: fs}
	const size = 64 << 20
	sp := archive.NewSpool(archive.SpoolConfig{Dir: t.TempDir()})
	t.Cleanup(func() { _ = sp.Close() })
	chunk := bytes.Repeat([]byte{0x5a}, 1<<20)
	for range size / len(chunk) {
		_, err := sp.Write(chunk)
		require.NoError(t, err)
	}
	body, err := sp.Reader()
	require.NoError(t, err)
	_, err = fs.Put(t.Context(), archive.PutInput{Key: "big/object", Size: sp.Size(), SHA256: sp.SHA256()}, body)
	require.NoError(t, err)
	cp := catalog.CopyAt{Store: fs.Location().Kind, Bucket: fs.Location().Bucket, Key: "big/object"}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	result, reason, err := h.readStored(t.Context(), "ME1", cp, size, sp.SHA256(), io.Discard)
	runtime.ReadMemStats(&after)
	require.NoError(t, err)
	require.Equal(t, catalog.VerifyOK, result, reason)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("reading %d MiB allocated %d KiB", size>>20, alloc>>10)
	require.Less(t, alloc, uint64(size/16), "reading back allocates with the object's size")

	other := sha256.Sum256([]byte("other"))
	for _, c := range []struct {
		name   string
		size   int64
		sha    [32]byte
		key    string
		result string
	}{
		{"other bytes", size, other, "big/object", catalog.VerifyMismatch},
		{"shorter than recorded", size + 1, sp.SHA256(), "big/object", catalog.VerifyMismatch},
		{"longer than recorded", size - 1, sp.SHA256(), "big/object", catalog.VerifyMismatch},
		{"missing", size, sp.SHA256(), "big/none", catalog.VerifyMissing},
	} {
		t.Run(c.name, func(t *testing.T) {
			result, reason, err := h.readStored(t.Context(), "ME1", catalog.CopyAt{Store: cp.Store, Bucket: cp.Bucket, Key: c.key}, c.size, c.sha, io.Discard)
			require.NoError(t, err)
			require.Equal(t, c.result, result)
			require.Contains(t, reason, c.key)
		})
	}
	result, reason, err = h.readStored(t.Context(), "ME1", catalog.CopyAt{Store: "s3", Bucket: "elsewhere", Key: "big/object"}, size, sp.SHA256(), io.Discard)
	require.NoError(t, err)
	require.Equal(t, catalog.VerifyError, result)
	require.Contains(t, reason, `"elsewhere"`)

	// Bytes changed under the store's feet (same size) are found too.
	path := filepath.Join(fs.Dir(), "big", "object")
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteAt([]byte{0x00}, size/2)
		require.NoError(t, f.Close())
	}
	require.NoError(t, err)
	result, _, err = h.readStored(t.Context(), "ME1", cp, size, sp.SHA256(), io.Discard)
	require.NoError(t, err)
	require.Equal(t, catalog.VerifyMismatch, result)
}

// A verify run keeps Redis at a few tasks whatever the archive's size:
// its start queues the first WindowsReleased batches, each batch the one
// after it and only while the backlog allows, and the reconciler rebuilds
// only the chains' heads. Each result counts once in the metrics.
func TestVerifyChainsUnderTheBacklogBound(t *testing.T) {
	t.Parallel()
	b := holdSetup(t, 0)
	ctx := t.Context()
	b.h.windowsReleased, b.h.maxBacklog = 2, 250
	counted := &countResults{}
	b.h.metrics = counted
	const media = 170 // batches 0..3
	for range media {
		b.archive(t, "+15550100")
	}
	run, err := b.catalog.CreateVerifyRun(ctx, catalog.VerifySpec{AccountSID: testAccount, Sample: 1, Actor: "test"})
	require.NoError(t, err)
	_, err = b.catalog.StartRun(ctx, run.ID)
	require.NoError(t, err)
	require.NoError(t, b.h.startVerify(ctx, run))
	run, err = b.catalog.GetRun(ctx, run.ID)
	require.NoError(t, err)

	inspector := asynq.NewInspectorFromRedisClient(b.redis.Client)
	pending := func() []string {
		tasks, err := inspector.ListPendingTasks(b.h.queues.Media)
		require.NoError(t, err)
		var ids []string
		for _, tk := range tasks {
			ids = append(ids, strings.TrimPrefix(tk.ID, "verify-batch:"+run.ID.String()+":"))
		}
		slices.Sort(ids)
		return ids
	}
	require.Equal(t, []string{"0", "1"}, pending(), "the start queues two chains")

	require.NoError(t, b.h.verifyBatch(ctx, run, VerifyBatchPayload{RunID: run.ID, Batch: 0}))
	require.Equal(t, []string{"0", "1", "2"}, pending(), "batch 0 queued batch 2")

	// Redis lost everything: the reconciler queues the heads only.
	_, err = inspector.DeleteAllPendingTasks(b.h.queues.Media)
	require.NoError(t, err)
	_, err = b.catalog.Pool().Exec(ctx, `UPDATE run_verify SET updated_at = now() - interval '1 hour' WHERE run_id = $1`, run.ID)
	require.NoError(t, err)
	run.StartedAt = time.Now().Add(-time.Hour)
	require.NoError(t, b.h.reconcileVerify(ctx, run, time.Now().Add(-time.Minute)))
	require.Equal(t, []string{"1", "2"}, pending(), "not batch 3: it waits for batch 1")

	// Over the backlog bound: the batch is read and recorded, the next
	// waits (the task comes back later and only queues it).
	b.h.maxBacklog = 1
	err = b.h.verifyBatch(ctx, run, VerifyBatchPayload{RunID: run.ID, Batch: 1})
	var rl *RetryLaterError
	require.ErrorAs(t, err, &rl)
	n, err := b.catalog.VerifyCounts(ctx, run.ID)
	require.NoError(t, err)
	require.Equal(t, 100, n.OK)
	require.Equal(t, []string{"1", "2"}, pending())

	b.h.maxBacklog = 250
	for _, batch := range []int{1, 2, 3} {
		require.NoError(t, b.h.verifyBatch(ctx, run, VerifyBatchPayload{RunID: run.ID, Batch: batch}))
	}
	n, err = b.catalog.VerifyCounts(ctx, run.ID)
	require.NoError(t, err)
	require.Equal(t, catalog.VerifyCounts{Total: media, OK: media, Bytes: n.Bytes}, n)
	done, err := b.catalog.FinishRunIfDone(ctx, run.ID)
	require.NoError(t, err)
	require.True(t, done)
	st, err := b.catalog.RunStatus(ctx, run.ID)
	require.NoError(t, err)
	require.Equal(t, catalog.RunSucceeded, st.State)
	require.Equal(t, media, counted.n[catalog.VerifyOK], "each object counted once")
}

type countResults struct {
	noMetrics
	mu sync.Mutex
	n  map[string]int
}

func (c *countResults) Verified(result string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[result]++
}
