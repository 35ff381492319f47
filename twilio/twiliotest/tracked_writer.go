package twiliotest

import (
	"net/http"
	"strconv"
)

// trackedWriter wraps a ResponseWriter to run finish just before the client
// can have the whole answer: at the header when there is no body, else
// right before the write that completes Content-Length. So when a client
// has read an answer, its request has left the in-flight count and is in
// the stats and the log; a client that sends its next request at once is
// never refused for its previous one.
type trackedWriter struct {
	http.ResponseWriter
	head     bool                // a HEAD request: the body is never sent
	onHeader func(h http.Header) // sets headers computed at the last moment
	finish   func(status int)

	status    int
	remaining int64 // body bytes still to write, -1 if unknown
	finished  bool
}

func (w *trackedWriter) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	w.status = code
	if w.onHeader != nil {
		w.onHeader(w.Header())
	}
	w.remaining = -1
	if cl, err := strconv.ParseInt(w.Header().Get("Content-Length"), 10, 64); err == nil {
		w.remaining = cl
	}
	if w.head || code == http.StatusNoContent || code == http.StatusNotModified || w.remaining == 0 {
		w.done()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *trackedWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.remaining >= 0 && int64(len(b)) >= w.remaining {
		w.done()
	}
	n, err := w.ResponseWriter.Write(b)
	if w.remaining > 0 {
		w.remaining -= int64(n)
	}
	return n, err
}

// done runs finish once; the handler's end calls it too, for answers
// without a Content-Length or cut short.
func (w *trackedWriter) done() {
	if w.finished {
		return
	}
	w.finished = true
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.finish(w.status)
}

func (w *trackedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
