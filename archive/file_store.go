package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/mediasync/mediasync/internal/objects"
)

// fileStoreDir is the file store's own directory inside its root: temporary
// files and metadata sidecars live there, so the rest of the tree mirrors the
// S3 key layout file for file. Keys may not begin with it.
const fileStoreDir = ".mediasync"

// staleTempAge is how old a temporary file must be before NewFileStore
// deletes it as the leftover of a crashed Put.
const staleTempAge = 24 * time.Hour

// FileStore is a Store in a local directory, for trying mediasync without S3
// and for small installations. An object with key K is the file <dir>/K,
// read-only; its content type and metadata are in the sidecar
// <dir>/.mediasync/meta/K.json.
//
// Put is create-only and crash-safe:
//
//  1. The bytes go to a temporary file in <dir>/.mediasync/tmp (the same
//     file system), hashed on the way, and are checked against the expected
//     size and SHA-256. A mismatch deletes the file: nothing is published.
//  2. The file is fsynced, then published with link(2), which fails if the
//     key already exists: there is no moment when a reader can see a partial
//     object, and no way to replace an existing one. The directories from
//     the object up to the root are fsynced so that the new name survives a
//     crash.
//  3. The sidecar is published the same way and the temporary file removed.
//
// A crash before step 2 leaves only a temporary file (deleted by a later
// NewFileStore once a day old). A crash between 2 and 3 leaves the object
// without its sidecar: Put had not returned, so the caller retries, finds
// the same bytes in place (Existed) and writes the sidecar then. Stat always
// re-hashes the file, so it reports what is on disk, not what was intended.
//
// Hard links are required (any local Linux file system has them);
// NewFileStore checks for them.
type FileStore struct {
	root string
	tmp  string
	meta string

	listWindow int // directory entries List holds at a time (see readDirWindow)
}

// defaultListWindow is FileStore's list window: 64Ki entries are a few MB,
// and a directory up to that size is read once.
const defaultListWindow = 1 << 16

var _ Store = (*FileStore)(nil)

// NewFileStore returns a store in dir, creating the directory if needed.
func NewFileStore(dir string) (*FileStore, error) {
	if dir == "" {
		return nil, errors.New("file store: directory is empty")
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("file store %q: %w", dir, err)
	}
	s := &FileStore{
		root: root,
		tmp:  filepath.Join(root, fileStoreDir, "tmp"),
		meta: filepath.Join(root, fileStoreDir, "meta"),

		listWindow: defaultListWindow,
	}
	for _, d := range []string{s.tmp, s.meta} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("file store %q: %w", root, err)
		}
	}
	if err := s.checkLinks(); err != nil {
		return nil, fmt.Errorf("file store %q: the file system must support hard links: %w", root, err)
	}
	s.reapTemp()
	return s, nil
}

func (s *FileStore) checkLinks() error {
	f, err := os.CreateTemp(s.tmp, "probe-*")
	if err != nil {
		return err
	}
	name := f.Name()
	_ = f.Close()
	defer os.Remove(name)
	if err := os.Link(name, name+".link"); err != nil {
		return err
	}
	return os.Remove(name + ".link")
}

// reapTemp deletes temporary files left by crashed Puts. Only old ones: a
// younger file may belong to a Put running in another process.
func (s *FileStore) reapTemp() {
	entries, err := os.ReadDir(s.tmp)
	if err != nil {
		return
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > staleTempAge {
			_ = os.Remove(filepath.Join(s.tmp, e.Name()))
		}
	}
}

// Location implements Store.
func (s *FileStore) Location() objects.Location {
	return objects.Location{Kind: objects.LocationFile, Bucket: s.root}
}

// Dir returns the store's absolute root directory.
func (s *FileStore) Dir() string { return s.root }

// paths returns the object's and its sidecar's paths, refusing keys that
// would leave the root or enter the store's own directory.
func (s *FileStore) paths(key string) (obj, side string, err error) {
	if err := checkKey(key); err != nil {
		return "", "", err
	}
	if first, _, _ := strings.Cut(key, "/"); first == fileStoreDir {
		return "", "", fmt.Errorf("%w: key %q is inside the file store's reserved %s directory", ErrInvalidInput, key, fileStoreDir)
	}
	rel := filepath.FromSlash(key)
	// checkKey already refuses "..", "." and absolute keys; this is the
	// belt to its braces.
	if !filepath.IsLocal(rel) {
		return "", "", fmt.Errorf("%w: key %q escapes the store directory", ErrInvalidInput, key)
	}
	return filepath.Join(s.root, rel), filepath.Join(s.meta, rel+".json"), nil
}

// sidecar is the JSON stored beside each object.
type sidecar struct {
	Key         string            `json:"key"`
	Size        int64             `json:"size"`
	SHA256      string            `json:"sha256"`
	ContentType string            `json:"content_type"`
	Metadata    map[string]string `json:"metadata"`
}

// Put implements Store.
func (s *FileStore) Put(ctx context.Context, in PutInput, body io.ReadSeeker) (PutResult, error) {
	if in.LockMode != "" || in.LegalHold {
		return PutResult{}, fmt.Errorf("file put %q: %w: a directory cannot lock objects (Object Lock needs S3)", in.Key, ErrInvalidInput)
	}
	meta, err := checkPutInput(in)
	if err != nil {
		return PutResult{}, fmt.Errorf("file put: %w", err)
	}
	obj, side, err := s.paths(in.Key)
	if err != nil {
		return PutResult{}, fmt.Errorf("file put: %w", err)
	}
	contentType := in.ContentType
	if contentType == "" {
		contentType = defaultContentType
	}
	car := sidecar{Key: in.Key, Size: in.Size, SHA256: hex.EncodeToString(in.SHA256[:]), ContentType: contentType, Metadata: meta}

	// A retry usually finds its object in place: settle it without copying.
	if _, err := os.Lstat(obj); err == nil {
		return s.existing(ctx, in, car, side)
	}

	tmp, err := s.writeTemp(ctx, in, body)
	if err != nil {
		return PutResult{}, fmt.Errorf("file put %q: %w", in.Key, err)
	}
	defer os.Remove(tmp)
	return s.publish(ctx, in, car, tmp, obj, side)
}

// publish links a checked, fsynced temporary file to its key, create-only,
// and writes its sidecar.
func (s *FileStore) publish(ctx context.Context, in PutInput, car sidecar, tmp, obj, side string) (PutResult, error) {
	if err := s.mkdirs(filepath.Dir(obj)); err != nil {
		return PutResult{}, fmt.Errorf("file put %q: %w", in.Key, err)
	}
	if err := os.Link(tmp, obj); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return s.existing(ctx, in, car, side)
		}
		return PutResult{}, fmt.Errorf("file put %q: publish: %w", in.Key, err)
	}
	if err := s.syncUp(filepath.Dir(obj)); err != nil {
		return PutResult{}, fmt.Errorf("file put %q: %w", in.Key, err)
	}
	if err := s.writeSidecar(car, side); err != nil {
		return PutResult{}, fmt.Errorf("file put %q: %w", in.Key, err)
	}
	return PutResult{}, nil
}

// existing settles a Put whose key is taken: the same bytes make it a
// success (after making sure the sidecar is there), other bytes a conflict.
func (s *FileStore) existing(ctx context.Context, in PutInput, car sidecar, side string) (PutResult, error) {
	_, err := verifyObject(ctx, s, in.Key, in.Size, in.SHA256)
	switch {
	case errors.Is(err, ErrChecksumMismatch):
		return PutResult{}, fmt.Errorf("file put %q: %w (%v)", in.Key, ErrConflict, err)
	case err != nil:
		return PutResult{}, fmt.Errorf("file put %q: key is taken but its object cannot be compared: %w", in.Key, err)
	}
	if err := s.writeSidecar(car, side); err != nil {
		return PutResult{}, fmt.Errorf("file put %q: %w", in.Key, err)
	}
	return PutResult{Existed: true}, nil
}

// writeTemp copies body into a new temporary file, checks its size and
// SHA-256, and fsyncs it. It returns the file's path.
func (s *FileStore) writeTemp(ctx context.Context, in PutInput, body io.ReadSeeker) (path string, err error) {
	if _, err := body.Seek(0, io.SeekStart); err != nil {
		return "", fmt.Errorf("rewind body: %w", err)
	}
	f, err := os.CreateTemp(s.tmp, "put-*")
	if err != nil {
		return "", err
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	h := sha256.New()
	// One byte past the declared size is enough to know the body is too
	// long; reading more would only fill the disk.
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(ctxReader{ctx, body}, in.Size+1))
	if err != nil {
		return "", fmt.Errorf("write temporary file: %w", err)
	}
	var got [32]byte
	h.Sum(got[:0])
	switch {
	case n != in.Size:
		return "", fmt.Errorf("body has %d bytes or more, PutInput.Size says %d: %w", n, in.Size, ErrChecksumMismatch)
	case got != in.SHA256:
		return "", fmt.Errorf("body has sha256 %x, PutInput.SHA256 says %x: %w", got, in.SHA256, ErrChecksumMismatch)
	}
	if err := f.Chmod(0o444); err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("sync temporary file: %w", err)
	}
	return f.Name(), nil
}

// writeSidecar publishes car at path unless a sidecar describing the same
// bytes is already there. A sidecar describing other bytes is stale (its
// object was removed by hand and the key reused) and is replaced.
func (s *FileStore) writeSidecar(car sidecar, path string) error {
	if old, err := readSidecar(path); err == nil && old.Size == car.Size && old.SHA256 == car.SHA256 {
		return nil
	}
	data, err := json.MarshalIndent(car, "", "  ")
	if err != nil {
		return fmt.Errorf("encode sidecar: %w", err)
	}
	f, err := os.CreateTemp(s.tmp, "meta-*")
	if err != nil {
		return fmt.Errorf("write sidecar: %w", err)
	}
	defer os.Remove(f.Name())
	_, werr := f.Write(append(data, '\n'))
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("write sidecar: %w", err)
	}
	if err := s.mkdirs(filepath.Dir(path)); err != nil {
		return err
	}
	// Create-only when no sidecar exists; replace a stale one atomically.
	if err := os.Link(f.Name(), path); errors.Is(err, fs.ErrExist) {
		if old, rerr := readSidecar(path); rerr == nil && old.Size == car.Size && old.SHA256 == car.SHA256 {
			return nil // a concurrent Put of the same bytes got there first
		}
		err = os.Rename(f.Name(), path)
		if err != nil {
			return fmt.Errorf("publish sidecar: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("publish sidecar: %w", err)
	}
	return s.syncUp(filepath.Dir(path))
}

func readSidecar(path string) (sidecar, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return sidecar{}, err
	}
	var car sidecar
	if err := json.Unmarshal(data, &car); err != nil {
		return sidecar{}, fmt.Errorf("sidecar %s: %w", path, err)
	}
	return car, nil
}

// mkdirs creates dir and its missing parents below the root.
func (s *FileStore) mkdirs(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: a prefix of the key is already an object: %w", ErrInvalidInput, err)
		}
		return err
	}
	return nil
}

// syncUp fsyncs dir and every directory above it up to the root. A new
// directory entry is durable only once its directory is synced, and that
// directory's own entry only once its parent is: syncing the whole chain on
// every Put (rather than only directories this Put created) also covers a
// directory another Put created and has not synced yet.
func (s *FileStore) syncUp(dir string) error {
	for {
		if err := syncDir(dir); err != nil {
			return err
		}
		if dir == s.root || !strings.HasPrefix(dir, s.root) {
			return nil
		}
		dir = filepath.Dir(dir)
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	serr := d.Sync()
	cerr := d.Close()
	if err := errors.Join(serr, cerr); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// Stat implements Store. It re-hashes the whole file, so its SHA-256 is what
// is on disk now.
func (s *FileStore) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	obj, side, err := s.paths(key)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("file stat: %w", err)
	}
	f, size, err := openObject(obj)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("file stat %q: %w", key, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, ctxReader{ctx, f})
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("file stat %q: hash: %w", key, err)
	}
	info := ObjectInfo{Key: key, Size: n}
	h.Sum(info.SHA256[:0])
	if n != size {
		return ObjectInfo{}, fmt.Errorf("file stat %q: file changed size while hashed", key)
	}
	car, err := readSidecar(side)
	switch {
	case err == nil:
		info.ContentType = car.ContentType
		info.Metadata = car.Metadata
	case errors.Is(err, fs.ErrNotExist):
		// Published by a Put that has not finished (or crashed): the bytes
		// are there, their description is not yet.
	default:
		return ObjectInfo{}, fmt.Errorf("file stat %q: %w", key, err)
	}
	return info, nil
}

// Open implements Store. The reader checks the bytes against the size and
// SHA-256 recorded in the sidecar when the object was stored.
func (s *FileStore) Open(_ context.Context, key string) (io.ReadCloser, error) {
	obj, side, err := s.paths(key)
	if err != nil {
		return nil, fmt.Errorf("file open: %w", err)
	}
	f, size, err := openObject(obj)
	if err != nil {
		return nil, fmt.Errorf("file open %q: %w", key, err)
	}
	var want [32]byte
	if car, err := readSidecar(side); err == nil {
		if raw, err := hex.DecodeString(car.SHA256); err == nil && len(raw) == len(want) {
			copy(want[:], raw)
			size = car.Size
		}
	}
	return newVerifyingReader(f, key, size, want), nil
}

// openObject opens a published object, which must be a regular file.
func openObject(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, 0, ErrNotFound
		}
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, 0, err
	}
	if !st.Mode().IsRegular() {
		_ = f.Close()
		return nil, 0, ErrNotFound
	}
	return f, st.Size(), nil
}

// ctxReader stops a long local copy when its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// List implements Store by walking the directory tree. Entries are visited
// in the order their keys sort (a directory "a" as "a/"), so keys come out
// in ascending byte order as S3 lists them. Memory does not grow with a
// directory's size: each directory on the way down is read a window of
// entries at a time (see readDirWindow).
func (s *FileStore) List(ctx context.Context, prefix string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		// Start in the deepest directory every matching key lies under.
		dir, _ := path.Split(prefix)
		dir = strings.TrimSuffix(dir, "/")
		if dir != "" && checkKey(dir) != nil {
			return // no valid key lies under it
		}
		s.list(ctx, dir, prefix, yield)
	}
}

// list yields the keys under dir (a key prefix without its trailing '/')
// that begin with prefix; it returns false once yield has.
func (s *FileStore) list(ctx context.Context, dir, prefix string, yield func(string, error) bool) bool {
	after := "" // the sort name of the last entry visited
	for {
		if err := ctx.Err(); err != nil {
			return yield("", err)
		}
		entries, more, err := s.readDirWindow(ctx, filepath.Join(s.root, filepath.FromSlash(dir)), after)
		if errors.Is(err, fs.ErrNotExist) {
			return true
		}
		if err != nil {
			return yield("", fmt.Errorf("file store list %q: %w", prefix, err))
		}
		for _, e := range entries {
			key := e.Name()
			if dir != "" {
				key = dir + "/" + key
			} else if key == fileStoreDir {
				continue
			}
			switch {
			case e.IsDir():
				if (strings.HasPrefix(key+"/", prefix) || strings.HasPrefix(prefix, key+"/")) && !s.list(ctx, key, prefix, yield) {
					return false
				}
			case e.Type().IsRegular() && strings.HasPrefix(key, prefix):
				if !yield(key, nil) {
					return false
				}
			}
		}
		if !more {
			return true
		}
		after = sortName(entries[len(entries)-1])
	}
}

// sortName is the name an entry sorts by in a listing: a directory's name
// with its trailing '/', as its keys begin.
func sortName(e fs.DirEntry) string {
	if e.IsDir() {
		return e.Name() + "/"
	}
	return e.Name()
}

// readDirWindow returns the first s.listWindow entries of directory dir
// whose sort names come after after ("": from the first), in sort order, and
// whether more follow. It reads the directory in batches and keeps at most
// twice the window, however large the directory: one larger than the window
// is read again for each window listed, which trades reads for memory.
func (s *FileStore) readDirWindow(ctx context.Context, dir, after string) ([]fs.DirEntry, bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	window := max(s.listWindow, 1)
	byName := func(a, b fs.DirEntry) int { return strings.Compare(sortName(a), sortName(b)) }
	var kept []fs.DirEntry
	more := false
	cut := "" // once more: entries sorting at or past cut are not in this window
	for {
		batch, err := f.ReadDir(1024)
		for _, e := range batch {
			name := sortName(e)
			if name <= after || (more && name >= cut) {
				continue
			}
			kept = append(kept, e)
			if len(kept) == 2*window {
				slices.SortFunc(kept, byName)
				cut, more = sortName(kept[window]), true
				clear(kept[window:])
				kept = kept[:window]
			}
		}
		if errors.Is(err, io.EOF) || (err == nil && len(batch) == 0) {
			break
		}
		if err != nil {
			return nil, false, err
		}
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
	}
	slices.SortFunc(kept, byName)
	if len(kept) > window {
		clear(kept[window:])
		kept, more = kept[:window], true
	}
	return kept, more, nil
}
