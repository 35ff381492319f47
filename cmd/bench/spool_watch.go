package main

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// spoolWatch counts the files created in a worker's spool directory while
// a run lasts. The spool unlinks each file as soon as it is created, so
// only the kernel's notice (inotify IN_CREATE) sees them: the watch tells
// whether a run's downloads went to disk (the spool past its 1 MiB of
// memory) or streamed into S3.
type spoolWatch struct {
	fd    int
	files atomic.Int64
	stopc chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
}

// watchSpool starts counting the files created in dir.
func watchSpool(dir string) (*spoolWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("inotify watch %s: %w", dir, err)
	}
	w := &spoolWatch{fd: fd, stopc: make(chan struct{})}
	w.wg.Go(w.loop)
	return w, nil
}

func (w *spoolWatch) loop() {
	buf := make([]byte, 64<<10)
	fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
	for {
		select {
		case <-w.stopc:
			w.read(buf) // what arrived before the stop
			return
		default:
		}
		if n, err := unix.Poll(fds, 100); err != nil || n == 0 {
			continue
		}
		w.read(buf)
	}
}

// read counts the creations queued.
func (w *spoolWatch) read(buf []byte) {
	for {
		n, err := unix.Read(w.fd, buf)
		if err != nil || n <= 0 {
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			if ev.Mask&unix.IN_CREATE != 0 && bytes.HasPrefix(name, []byte("mediasync-spool-")) {
				w.files.Add(1)
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
	}
}

// stop ends the watch (once) and returns how many spool files were
// created.
func (w *spoolWatch) stop() int64 {
	w.once.Do(func() {
		close(w.stopc)
		w.wg.Wait()
		unix.Close(w.fd)
	})
	return w.files.Load()
}
