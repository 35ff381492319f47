package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/internal/objects"
)

// LargeObjectSize is the size of the object the suite streams through a
// Spool: far above the spool's memory and any single read buffer.
const LargeObjectSize = 40 << 20

// Run checks that the stores newStore returns keep the archive.Store
// contract.
func Run(t *testing.T, newStore func(t *testing.T) archive.Store) {
	t.Helper()
	cases := []struct {
		name string
		test func(t *testing.T, s archive.Store)
	}{
		{"NotFound", testNotFound},
		{"ReadAfterWrite", testReadAfterWrite},
		{"EmptyObject", testEmptyObject},
		{"ContentType", testContentType},
		{"UnusualKeys", testUnusualKeys},
		{"PutRewindsBody", testPutRewindsBody},
		{"ChecksumMismatchRejected", testChecksumMismatch},
		{"SizeMismatchRejected", testSizeMismatch},
		{"InvalidInputRejected", testInvalidInput},
		{"IdempotentPut", testIdempotentPut},
		{"ConflictingPut", testConflictingPut},
		{"Verify", testVerify},
		{"LargeObjectFromSpool", testLargeObject},
		{"ConcurrentPutsSameBytes", testConcurrentSame},
		{"ConcurrentPutsDifferentBytes", testConcurrentDifferent},
		{"StreamedCreate", testStreamedCreate},
		{"StreamedPut", testStreamedPut},
		{"StreamedPutRefusedStoresNothing", testStreamedPutRefused},
		{"StreamedPutLarge", testStreamedPutLarge},
		{"List", testList},
		{"ListLargeDirectory", testListLargeDirectory},
		{"AuditAnchorsInChainOrder", testAuditAnchors},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.test(t, newStore(t))
		})
	}
}

// object is test content with what a Put needs to know about it.
type object struct {
	data []byte
	sha  [32]byte
}

func newObject(data []byte) object { return object{data: data, sha: sha256.Sum256(data)} }

// randomBytes returns n reproducible pseudo-random bytes.
func randomBytes(n int, seed uint64) []byte {
	var key [32]byte
	key[0] = byte(seed)
	key[1] = byte(seed >> 8)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b)
	return b
}

func input(key string, o object) archive.PutInput {
	return archive.PutInput{Key: key, ContentType: "image/jpeg", Size: int64(len(o.data)), SHA256: o.sha}
}

func put(t *testing.T, s archive.Store, in archive.PutInput, data []byte) archive.PutResult {
	t.Helper()
	res, err := s.Put(t.Context(), in, bytes.NewReader(data))
	require.NoError(t, err, "put %q", in.Key)
	return res
}

// readAll opens key and returns its bytes, failing the test on any error
// (including the reader's own checksum check at the end).
func readAll(t *testing.T, s archive.Store, key string) []byte {
	t.Helper()
	rc, err := s.Open(t.Context(), key)
	require.NoError(t, err, "open %q", key)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err, "read %q", key)
	return b
}

func requireNotStored(t *testing.T, s archive.Store, key string) {
	t.Helper()
	_, err := s.Stat(t.Context(), key)
	require.ErrorIs(t, err, archive.ErrNotFound, "stat %q after a rejected put", key)
}

func testNotFound(t *testing.T, s archive.Store) {
	ctx := t.Context()
	const key = "no/such/object.jpg"
	_, err := s.Stat(ctx, key)
	require.ErrorIs(t, err, archive.ErrNotFound)
	_, err = s.Open(ctx, key)
	require.ErrorIs(t, err, archive.ErrNotFound)
	err = archive.Verify(ctx, s, key, 1, [32]byte{1})
	require.ErrorIs(t, err, archive.ErrNotFound)
	require.Contains(t, err.Error(), key, "the error names the key")

	// A prefix of an existing key is not an object either.
	o := newObject([]byte("deeper"))
	put(t, s, input("no/such/object/below.jpg", o), o.data)
	_, err = s.Stat(ctx, "no/such/object")
	require.ErrorIs(t, err, archive.ErrNotFound)
}

func testReadAfterWrite(t *testing.T, s archive.Store) {
	ctx := t.Context()
	o := newObject(randomBytes(100_000, 1))
	key := archive.ObjectKey("media", archive.KeyInfo{
		AccountSID:  "AC00000000000000000000000000000001",
		MessageSID:  "MM00000000000000000000000000000002",
		MediaSID:    "ME00000000000000000000000000000003",
		ContentType: "image/png",
		DateSent:    time.Date(2024, 3, 9, 23, 59, 0, 0, time.UTC),
	})
	in := input(key, o)
	in.ContentType = "image/png"
	in.Metadata = map[string]string{
		archive.MetaAccountSID: "AC00000000000000000000000000000001",
		archive.MetaMediaSID:   "ME00000000000000000000000000000003",
		"filename":             "holiday photo.png",
	}
	res := put(t, s, in, o.data)
	require.False(t, res.Existed)

	info, err := s.Stat(ctx, key)
	require.NoError(t, err)
	assert.Equal(t, key, info.Key)
	assert.Equal(t, int64(len(o.data)), info.Size)
	assert.Equal(t, o.sha, info.SHA256, "a small object's SHA-256 is proven by the store")
	assert.Equal(t, "image/png", info.ContentType)
	assert.Equal(t, res.VersionID, info.VersionID)
	want := map[string]string{
		archive.MetaAccountSID: "AC00000000000000000000000000000001",
		archive.MetaMediaSID:   "ME00000000000000000000000000000003",
		"filename":             "holiday photo.png",
		archive.MetaSHA256:     fmt.Sprintf("%x", o.sha),
	}
	assert.Equal(t, want, info.Metadata)
	assert.Equal(t, o.data, readAll(t, s, key))
	require.NoError(t, archive.Verify(ctx, s, key, int64(len(o.data)), o.sha))

	loc := s.Location()
	assert.Contains(t, []string{objects.LocationS3, objects.LocationFile}, loc.Kind)
	assert.NotEmpty(t, loc.Bucket)
}

func testEmptyObject(t *testing.T, s archive.Store) {
	o := newObject(nil)
	put(t, s, input("empty.txt", o), o.data)
	info, err := s.Stat(t.Context(), "empty.txt")
	require.NoError(t, err)
	assert.Equal(t, int64(0), info.Size)
	assert.Equal(t, o.sha, info.SHA256)
	assert.Empty(t, readAll(t, s, "empty.txt"))
}

func testContentType(t *testing.T, s archive.Store) {
	o := newObject([]byte("no type"))
	in := input("untyped", o)
	in.ContentType = ""
	put(t, s, in, o.data)
	info, err := s.Stat(t.Context(), "untyped")
	require.NoError(t, err)
	assert.Equal(t, "application/octet-stream", info.ContentType)

	// Parameters are kept as given.
	in = input("typed.vcf", o)
	in.ContentType = "text/vcard; charset=utf-8"
	put(t, s, in, o.data)
	info, err = s.Stat(t.Context(), "typed.vcf")
	require.NoError(t, err)
	assert.Equal(t, "text/vcard; charset=utf-8", info.ContentType)
}

func testUnusualKeys(t *testing.T, s archive.Store) {
	keys := []string{
		"with space/and+plus/100%/a=b&c?d#e.jpg",
		"unicode/日本語/ünïcödé.png",
		"dots/.hidden/..twice/trailing.",
		"x",
		strings.Repeat("k", 200) + "/" + strings.Repeat("v", 200),
	}
	for i, key := range keys {
		o := newObject([]byte(fmt.Sprintf("object %d", i)))
		put(t, s, input(key, o), o.data)
		assert.Equal(t, o.data, readAll(t, s, key), "key %q", key)
		require.NoError(t, archive.Verify(t.Context(), s, key, int64(len(o.data)), o.sha), "key %q", key)
	}
}

func testPutRewindsBody(t *testing.T, s archive.Store) {
	o := newObject([]byte("the whole body, not its tail"))
	body := bytes.NewReader(o.data)
	_, err := body.Seek(10, io.SeekStart)
	require.NoError(t, err)
	_, err = s.Put(t.Context(), input("rewound", o), body)
	require.NoError(t, err)
	assert.Equal(t, o.data, readAll(t, s, "rewound"))
}

func testChecksumMismatch(t *testing.T, s archive.Store) {
	o := newObject(randomBytes(70_000, 2))
	in := input("corrupt.jpg", o)
	in.SHA256[0] ^= 0xff
	_, err := s.Put(t.Context(), in, bytes.NewReader(o.data))
	require.ErrorIs(t, err, archive.ErrChecksumMismatch)
	require.Contains(t, err.Error(), "corrupt.jpg")
	requireNotStored(t, s, "corrupt.jpg")

	// A correct Put afterwards is a first write, not a retry.
	res := put(t, s, input("corrupt.jpg", o), o.data)
	assert.False(t, res.Existed)
}

func testSizeMismatch(t *testing.T, s archive.Store) {
	o := newObject(randomBytes(10_000, 3))
	for _, delta := range []int64{-1, 1, -10_000} {
		t.Run(fmt.Sprintf("declared%+d", delta), func(t *testing.T) {
			t.Parallel()
			key := fmt.Sprintf("size%+d", delta)
			in := input(key, o)
			in.Size += delta
			_, err := s.Put(t.Context(), in, bytes.NewReader(o.data))
			require.ErrorIs(t, err, archive.ErrChecksumMismatch)
			requireNotStored(t, s, key)
		})
	}
}

func testInvalidInput(t *testing.T, s archive.Store) {
	o := newObject([]byte("valid bytes"))
	cases := map[string]func(in *archive.PutInput){
		"empty key":                      func(in *archive.PutInput) { in.Key = "" },
		"leading slash":                  func(in *archive.PutInput) { in.Key = "/abs/key" },
		"trailing slash":                 func(in *archive.PutInput) { in.Key = "dir/" },
		"double slash":                   func(in *archive.PutInput) { in.Key = "a//b" },
		"dot-dot":                        func(in *archive.PutInput) { in.Key = "a/../../etc/passwd" },
		"dot segment":                    func(in *archive.PutInput) { in.Key = "a/./b" },
		"backslash":                      func(in *archive.PutInput) { in.Key = `a\..\b` },
		"control character":              func(in *archive.PutInput) { in.Key = "a\nb" },
		"invalid UTF-8":                  func(in *archive.PutInput) { in.Key = "a\xffb" },
		"too long":                       func(in *archive.PutInput) { in.Key = strings.Repeat("k", 1025) },
		"negative size":                  func(in *archive.PutInput) { in.Size = -1 },
		"upper-case meta key":            func(in *archive.PutInput) { in.Metadata = map[string]string{"Account": "x"} },
		"underscore meta key":            func(in *archive.PutInput) { in.Metadata = map[string]string{"account_sid": "x"} },
		"non-ASCII meta value":           func(in *archive.PutInput) { in.Metadata = map[string]string{"name": "café"} },
		"newline in meta":                func(in *archive.PutInput) { in.Metadata = map[string]string{"name": "a\r\nb"} },
		"meta value padded":              func(in *archive.PutInput) { in.Metadata = map[string]string{"name": " a "} },
		"metadata too large":             func(in *archive.PutInput) { in.Metadata = map[string]string{"big": strings.Repeat("v", 2100)} },
		"wrong sha256 meta":              func(in *archive.PutInput) { in.Metadata = map[string]string{archive.MetaSHA256: "00"} },
		"content type newline":           func(in *archive.PutInput) { in.ContentType = "text/plain\r\nx: y" },
		"lock mode without retain-until": func(in *archive.PutInput) { in.LockMode = objects.LockCompliance },
		"unknown lock mode":              func(in *archive.PutInput) { in.LockMode = "FOREVER"; in.RetainUntil = time.Now().Add(time.Hour) },
		"retain until":                   func(in *archive.PutInput) { in.RetainUntil = time.Now().Add(time.Hour) },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			key := "valid/key-" + strings.ReplaceAll(name, " ", "-")
			in := input(key, o)
			mutate(&in)
			_, err := s.Put(t.Context(), in, bytes.NewReader(o.data))
			require.ErrorIs(t, err, archive.ErrInvalidInput)
			if in.Key == key {
				requireNotStored(t, s, key)
			}
		})
	}
}

func testIdempotentPut(t *testing.T, s archive.Store) {
	ctx := t.Context()
	o := newObject(randomBytes(50_000, 4))
	in := input("twice.jpg", o)
	in.Metadata = map[string]string{"attempt": "1"}
	first := put(t, s, in, o.data)
	require.False(t, first.Existed)

	// The retry of a job that died after the first Put, possibly with
	// metadata that differs in details: the bytes decide.
	in.Metadata = map[string]string{"attempt": "2"}
	second := put(t, s, in, o.data)
	require.True(t, second.Existed, "the second put of the same bytes reports Existed")
	assert.Equal(t, first.VersionID, second.VersionID)
	assert.Equal(t, o.data, readAll(t, s, "twice.jpg"))
	info, err := s.Stat(ctx, "twice.jpg")
	require.NoError(t, err)
	assert.Equal(t, "1", info.Metadata["attempt"], "a retry does not rewrite the object")
}

func testConflictingPut(t *testing.T, s archive.Store) {
	ctx := t.Context()
	orig := newObject(randomBytes(30_000, 5))
	put(t, s, input("taken.jpg", orig), orig.data)

	for name, other := range map[string]object{
		"same size":      newObject(randomBytes(30_000, 6)),
		"different size": newObject(randomBytes(30_001, 7)),
		"empty":          newObject(nil),
	} {
		_, err := s.Put(ctx, input("taken.jpg", other), bytes.NewReader(other.data))
		require.ErrorIs(t, err, archive.ErrConflict, name)
		require.Contains(t, err.Error(), "taken.jpg", name)
	}
	assert.Equal(t, orig.data, readAll(t, s, "taken.jpg"), "the original is intact")
	require.NoError(t, archive.Verify(ctx, s, "taken.jpg", int64(len(orig.data)), orig.sha))
}

func testVerify(t *testing.T, s archive.Store) {
	ctx := t.Context()
	o := newObject(randomBytes(20_000, 8))
	put(t, s, input("verify.jpg", o), o.data)
	size := int64(len(o.data))
	wrongSHA := o.sha
	wrongSHA[31] ^= 1

	cases := []struct {
		desc string
		key  string
		size int64
		sha  [32]byte
		want error
	}{
		{"good", "verify.jpg", size, o.sha, nil},
		{"wrong sha256", "verify.jpg", size, wrongSHA, archive.ErrChecksumMismatch},
		{"wrong size", "verify.jpg", size + 1, o.sha, archive.ErrChecksumMismatch},
		{"zero sha256", "verify.jpg", size, [32]byte{}, archive.ErrChecksumMismatch},
		{"missing", "verify-missing.jpg", size, o.sha, archive.ErrNotFound},
	}
	for _, c := range cases {
		err := archive.Verify(ctx, s, c.key, c.size, c.sha)
		if c.want == nil {
			require.NoError(t, err, c.desc)
			continue
		}
		require.ErrorIs(t, err, c.want, c.desc)
		require.Contains(t, err.Error(), c.key, c.desc)
	}
}

func testLargeObject(t *testing.T, s archive.Store) {
	ctx := t.Context()
	spool := archive.NewSpool(archive.SpoolConfig{Dir: t.TempDir()})
	t.Cleanup(func() { require.NoError(t, spool.Close()) })
	var key [32]byte
	copy(key[:], "storetest large object")
	n, err := io.Copy(spool, io.LimitReader(rand.NewChaCha8(key), LargeObjectSize))
	require.NoError(t, err)
	require.Equal(t, int64(LargeObjectSize), n)
	want := spool.SHA256()
	body, err := spool.Reader()
	require.NoError(t, err)

	in := archive.PutInput{Key: "large/object.mp4", ContentType: "video/mp4", Size: spool.Size(), SHA256: want}
	res, err := s.Put(ctx, in, body)
	require.NoError(t, err)
	require.False(t, res.Existed)
	require.NoError(t, archive.Verify(ctx, s, in.Key, in.Size, want))

	info, err := s.Stat(ctx, in.Key)
	require.NoError(t, err)
	assert.Equal(t, in.Size, info.Size)
	if info.SHA256 != ([32]byte{}) {
		assert.Equal(t, want, info.SHA256)
	}

	// Read back streaming, never holding the object in memory.
	rc, err := s.Open(ctx, in.Key)
	require.NoError(t, err)
	h := sha256.New()
	got, err := io.Copy(h, rc)
	require.NoError(t, rc.Close())
	require.NoError(t, err)
	assert.Equal(t, in.Size, got)
	assert.Equal(t, want[:], h.Sum(nil))

	// The retry streams from the same spool again.
	res, err = s.Put(ctx, in, body)
	require.NoError(t, err)
	assert.True(t, res.Existed)
}

const concurrentPuts = 8

func testConcurrentSame(t *testing.T, s archive.Store) {
	o := newObject(randomBytes(200_000, 9))
	results := make([]archive.PutResult, concurrentPuts)
	errs := make([]error, concurrentPuts)
	var wg sync.WaitGroup
	for i := range concurrentPuts {
		wg.Go(func() {
			results[i], errs[i] = s.Put(t.Context(), input("race.jpg", o), bytes.NewReader(o.data))
		})
	}
	wg.Wait()
	winners := 0
	for i := range concurrentPuts {
		require.NoError(t, errs[i], "put %d", i)
		if !results[i].Existed {
			winners++
		}
	}
	assert.Equal(t, 1, winners, "exactly one put creates the object; the others find it")
	assert.Equal(t, o.data, readAll(t, s, "race.jpg"))
}

func testConcurrentDifferent(t *testing.T, s archive.Store) {
	objects := make([]object, concurrentPuts)
	for i := range objects {
		objects[i] = newObject(randomBytes(100_000+i, uint64(100+i)))
	}
	errs := make([]error, concurrentPuts)
	var wg sync.WaitGroup
	for i := range concurrentPuts {
		wg.Go(func() {
			_, errs[i] = s.Put(t.Context(), input("contested.jpg", objects[i]), bytes.NewReader(objects[i].data))
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			require.Equal(t, -1, winner, "two different objects were both stored")
			winner = i
		case errors.Is(err, archive.ErrConflict):
		default:
			t.Fatalf("put %d: %v", i, err)
		}
	}
	require.NotEqual(t, -1, winner, "one put wins")
	assert.Equal(t, objects[winner].data, readAll(t, s, "contested.jpg"), "the stored bytes are the winner's, whole")
}

// A stream of unknown length (a zip export) is stored create-only, whole or
// not at all, with the size and SHA-256 of exactly what was written.
func testStreamedCreate(t *testing.T, s archive.Store) {
	ctx := t.Context()
	c, ok := s.(archive.Creator)
	require.True(t, ok, "every store can take a stream")
	var seed [32]byte
	copy(seed[:], "storetest streamed create")
	data := make([]byte, LargeObjectSize)
	_, _ = rand.NewChaCha8(seed).Read(data)
	want := sha256.Sum256(data)

	w, err := c.Create(ctx, "stream/export.zip", "application/zip")
	require.NoError(t, err)
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 1<<20+17) // chunks that straddle part boundaries
		_, err := w.Write(rest[:n])
		require.NoError(t, err)
		rest = rest[n:]
	}
	requireNotStored(t, s, "stream/export.zip") // nothing visible before Commit
	res, err := w.Commit()
	require.NoError(t, err)
	assert.Equal(t, int64(len(data)), res.Size)
	assert.Equal(t, want, res.SHA256)
	w.Abort() // harmless after Commit
	require.NoError(t, archive.Verify(ctx, s, "stream/export.zip", int64(len(data)), want))
	info, err := s.Stat(ctx, "stream/export.zip")
	require.NoError(t, err)
	assert.Equal(t, "application/zip", info.ContentType)

	// Create-only: a second stream to the key is refused, even with the same bytes.
	w, err = c.Create(ctx, "stream/export.zip", "application/zip")
	require.NoError(t, err)
	_, err = w.Write(data)
	require.NoError(t, err)
	_, err = w.Commit()
	require.ErrorIs(t, err, archive.ErrConflict)
	require.NoError(t, archive.Verify(ctx, s, "stream/export.zip", int64(len(data)), want))

	// An aborted stream leaves nothing.
	w, err = c.Create(ctx, "stream/aborted.zip", "application/zip")
	require.NoError(t, err)
	_, err = w.Write(data[:1000])
	require.NoError(t, err)
	w.Abort()
	requireNotStored(t, s, "stream/aborted.zip")
}

// List yields exactly the keys under a prefix, in the byte order S3 lists
// them (a '-' sorts before the '/' of a deeper folder), and nothing for a
// prefix with no keys.
func testList(t *testing.T, s archive.Store) {
	ctx := t.Context()
	o := newObject([]byte("listed"))
	for _, key := range []string{"l/b/2.json", "l/a-z.json", "l/a/1.json", "l/a/0.json", "l/b/10.json", "m/other.json", "l.json"} {
		put(t, s, input(key, o), o.data)
	}
	list := func(prefix string) []string {
		var keys []string
		for key, err := range s.List(ctx, prefix) {
			require.NoError(t, err, "list %q", prefix)
			keys = append(keys, key)
		}
		return keys
	}
	require.Equal(t, []string{"l/a-z.json", "l/a/0.json", "l/a/1.json", "l/b/10.json", "l/b/2.json"}, list("l/"))
	require.Equal(t, []string{"l/a-z.json", "l/a/0.json", "l/a/1.json"}, list("l/a"))
	require.Equal(t, []string{"l/b/10.json"}, list("l/b/1"))
	require.Empty(t, list("l/c/"))
	require.Empty(t, list("nothing/here/"))

	// Stopping early stops the listing.
	n := 0
	for range s.List(ctx, "l/") {
		n++
		break
	}
	require.Equal(t, 1, n)
}

// A directory with more entries than a store reads at once (a file store's
// list window, set small by its test) still lists in byte order, whole, and
// from a prefix inside it.
func testListLargeDirectory(t *testing.T, s archive.Store) {
	ctx := t.Context()
	o := newObject([]byte("many"))
	var keys []string
	for i := range 23 {
		keys = append(keys, fmt.Sprintf("w/%02d.json", 22-i))
	}
	keys = append(keys, "w/05-a.json", "w/05/x.json", "w/05/y.json", "w/1")
	for _, key := range keys {
		put(t, s, input(key, o), o.data)
	}
	list := func(prefix string) []string {
		var got []string
		for key, err := range s.List(ctx, prefix) {
			require.NoError(t, err, "list %q", prefix)
			got = append(got, key)
		}
		return got
	}
	require.Equal(t, slices.Sorted(slices.Values(keys)), list("w/"))
	require.Equal(t, []string{"w/05-a.json", "w/05.json", "w/05/x.json", "w/05/y.json"}, list("w/05"))
	var ones []string
	for _, k := range slices.Sorted(slices.Values(keys)) {
		if strings.HasPrefix(k, "w/1") {
			ones = append(ones, k)
		}
	}
	require.Equal(t, ones, list("w/1"))
}

// Audit anchors list in chain order across their shard directories, one
// shard can be listed alone, and objects that are not anchors in their
// place are skipped.
func testAuditAnchors(t *testing.T, s archive.Store) {
	ctx := t.Context()
	const acct = "AC0123456789abcdef0123456789abcdef"
	hash := sha256.Sum256([]byte("head"))
	o := newObject([]byte(`{}`))
	ids := []int64{2_000_000, 7, 1_000_001, 42_000_000_000, 1, 999_999, 1_000_000}
	for _, id := range ids {
		put(t, s, input(archive.AuditAnchorKey("m", acct, id, hash[:]), o), o.data)
	}
	dir := archive.AuditAnchorPrefix("m", acct)
	for _, stray := range []string{
		"README",                    // not an anchor
		"00000000000000/notes.json", // not an anchor, in a shard
		"00000000000001/" + fmt.Sprintf("%020d-%x.json", 8, hash), // in the wrong shard
		fmt.Sprintf("%020d-%x.json", 9, hash),                     // flat, as before shards
	} {
		put(t, s, input(dir+stray, o), o.data)
	}

	var got []int64
	for a, err := range archive.ListAuditAnchors(ctx, s, "m", acct) {
		require.NoError(t, err)
		require.Equal(t, archive.AuditAnchorKey("m", acct, a.HeadID, hash[:]), a.Key)
		require.Equal(t, hash[:], a.HeadHash)
		got = append(got, a.HeadID)
	}
	require.Equal(t, slices.Sorted(slices.Values(ids)), got, "chain order")

	var shard []string
	for key, err := range s.List(ctx, dir+"00000000000001/") {
		require.NoError(t, err)
		shard = append(shard, key)
	}
	require.Equal(t, []string{
		dir + "00000000000001/" + fmt.Sprintf("%020d-%x.json", 8, hash),
		archive.AuditAnchorKey("m", acct, 1_000_000, hash[:]),
		archive.AuditAnchorKey("m", acct, 1_000_001, hash[:]),
	}, shard, "a shard holds the anchors of its million head ids")
}

// streamer returns s as an archive.Streamer that streams objects of size
// bytes, or skips the test: a store that cannot stream (S3 over plain
// http) is given spooled bodies through Put instead, which the other
// cases check.
func streamer(t *testing.T, s archive.Store, size int64) archive.Streamer {
	t.Helper()
	st, ok := s.(archive.Streamer)
	if !ok || !st.Streams(size) {
		t.Skipf("%T does not stream %d bytes: callers spool them for Put", s, size)
	}
	return st
}

// onlyReader hides every method of a reader but Read: what a download is.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// A streamed put stores the bytes create-only, with the size and SHA-256
// it computed on the way, proven by the store; the same bytes again are
// Existed, others ErrConflict, as for Put.
func testStreamedPut(t *testing.T, s archive.Store) {
	ctx := t.Context()
	o := newObject(randomBytes(3<<20+5, 11))
	st := streamer(t, s, int64(len(o.data)))
	in := input("streamed/put.mp4", o)
	in.SHA256 = [32]byte{} // not known before the end
	in.ContentType = "video/mp4"
	in.Metadata = map[string]string{archive.MetaMediaSID: "ME00000000000000000000000000000003"}
	accepted := 0
	res, err := st.PutStream(ctx, in, onlyReader{bytes.NewReader(o.data)}, func() error { accepted++; return nil })
	require.NoError(t, err)
	require.Equal(t, 1, accepted, "accept is asked once, at the end")
	assert.False(t, res.Existed)
	assert.Equal(t, int64(len(o.data)), res.Size)
	assert.Equal(t, o.sha, res.SHA256)

	info, err := s.Stat(ctx, in.Key)
	require.NoError(t, err)
	assert.Equal(t, int64(len(o.data)), info.Size)
	assert.Equal(t, o.sha, info.SHA256, "the store proves the streamed object's SHA-256")
	assert.Equal(t, "video/mp4", info.ContentType)
	assert.Equal(t, "ME00000000000000000000000000000003", info.Metadata[archive.MetaMediaSID])
	if v, ok := info.Metadata[archive.MetaSHA256]; ok {
		assert.Equal(t, fmt.Sprintf("%x", o.sha), v)
	}
	assert.Equal(t, res.VersionID, info.VersionID)
	assert.Equal(t, o.data, readAll(t, s, in.Key))
	require.NoError(t, archive.Verify(ctx, s, in.Key, int64(len(o.data)), o.sha))

	// The same bytes again (a retried task): Existed, the object untouched.
	again, err := st.PutStream(ctx, in, onlyReader{bytes.NewReader(o.data)}, nil)
	require.NoError(t, err)
	assert.True(t, again.Existed)
	assert.Equal(t, o.sha, again.SHA256)
	assert.Equal(t, res.VersionID, again.VersionID)

	// Other bytes: refused, never overwritten; and by Put likewise.
	other := newObject(randomBytes(len(o.data), 12))
	_, err = st.PutStream(ctx, in, onlyReader{bytes.NewReader(other.data)}, nil)
	require.ErrorIs(t, err, archive.ErrConflict)
	_, err = s.Put(ctx, input(in.Key, other), bytes.NewReader(other.data))
	require.ErrorIs(t, err, archive.ErrConflict)
	assert.Equal(t, o.data, readAll(t, s, in.Key))

	// A known SHA-256 is checked too, and recorded as Put records it.
	known := input("streamed/known.mp4", o)
	res, err = st.PutStream(ctx, known, onlyReader{bytes.NewReader(o.data)}, nil)
	require.NoError(t, err)
	assert.Equal(t, o.sha, res.SHA256)
	info, err = s.Stat(ctx, known.Key)
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("%x", o.sha), info.Metadata[archive.MetaSHA256])
}

// errSuspect is an accept function's refusal.
var errSuspect = errors.New("storetest: the bytes are not what they claim")

// A streamed put whose body is refused at its end (accept says no, the
// body is shorter or longer than declared, its SHA-256 is not the one
// given, or the download breaks) leaves nothing at the key, though every
// byte before the refusal was sent: the store commits only a body that
// ended and checked out. The key stays free for the good copy.
func testStreamedPutRefused(t *testing.T, s archive.Store) {
	o := newObject(randomBytes(2<<20+3, 13))
	size := int64(len(o.data))
	st := streamer(t, s, size)
	wrong := o.sha
	wrong[0] ^= 1
	broken := errors.New("storetest: connection reset by peer")
	cases := []struct {
		desc   string
		body   func() io.Reader
		size   int64
		sha    [32]byte
		accept func() error
		want   error
	}{
		{"accept refuses", func() io.Reader { return bytes.NewReader(o.data) }, size, [32]byte{}, func() error { return errSuspect }, errSuspect},
		{"body short", func() io.Reader { return bytes.NewReader(o.data[:size-1]) }, size, [32]byte{}, nil, archive.ErrChecksumMismatch},
		{"body long", func() io.Reader { return bytes.NewReader(o.data) }, size - 1, [32]byte{}, nil, archive.ErrChecksumMismatch},
		{"sha256 wrong", func() io.Reader { return bytes.NewReader(o.data) }, size, wrong, nil, archive.ErrChecksumMismatch},
		{"body breaks", func() io.Reader {
			return io.MultiReader(bytes.NewReader(o.data[:size/2]), iotestErrReader{broken})
		}, size, [32]byte{}, nil, broken},
	}
	for i, c := range cases {
		t.Run(c.desc, func(t *testing.T) {
			t.Parallel()
			key := fmt.Sprintf("refused/%d.mp4", i)
			in := archive.PutInput{Key: key, ContentType: "video/mp4", Size: c.size, SHA256: c.sha}
			_, err := st.PutStream(t.Context(), in, onlyReader{c.body()}, c.accept)
			requireNotStored(t, s, key)
			require.ErrorIs(t, err, c.want)
			require.Contains(t, err.Error(), key)
			for k, err := range s.List(t.Context(), key) {
				require.NoError(t, err)
				t.Fatalf("a refused stream left %q", k)
			}
			// The key is free: the good copy is a first write.
			res, err := st.PutStream(t.Context(), archive.PutInput{Key: key, ContentType: "video/mp4", Size: size},
				onlyReader{bytes.NewReader(o.data)}, nil)
			require.NoError(t, err)
			assert.False(t, res.Existed)
			assert.Equal(t, o.sha, res.SHA256)
		})
	}
}

type iotestErrReader struct{ err error }

func (r iotestErrReader) Read([]byte) (int, error) { return 0, r.err }

// A large object streams through a bounded buffer and reads back whole.
func testStreamedPutLarge(t *testing.T, s archive.Store) {
	ctx := t.Context()
	st := streamer(t, s, LargeObjectSize)
	var key [32]byte
	copy(key[:], "storetest streamed put")
	h := sha256.New()
	body := io.TeeReader(io.LimitReader(rand.NewChaCha8(key), LargeObjectSize), h)
	res, err := st.PutStream(ctx, archive.PutInput{Key: "large/streamed.mp4", ContentType: "video/mp4", Size: LargeObjectSize}, onlyReader{body}, nil)
	require.NoError(t, err)
	var want [32]byte
	h.Sum(want[:0])
	assert.Equal(t, want, res.SHA256)
	require.NoError(t, archive.Verify(ctx, s, "large/streamed.mp4", LargeObjectSize, want))
}
