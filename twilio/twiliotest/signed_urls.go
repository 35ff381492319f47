package twiliotest

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mediasync/mediasync/internal/sleep"
)

// Signed URLs stand for Twilio's media CDN (mms.twiliocdn.com, S3): they are
// served on a second listener under another host name, carry
// Expires/Signature/Key-Pair-Id (HMAC-SHA256 over the path and expiry), and
// refuse a request that also carries Authorization, as a presigned S3 URL
// does ("Only one auth mechanism allowed"). Such attempts are counted: a
// client that forwards its Twilio credentials to the CDN leaks them.

type hop int

const (
	hopFirst  hop = iota // /AC…/<32 hex>: where the API redirects
	hopEdge              // /edge/AC…/<32 hex>: the second hop when RedirectHops is 2
	hopDirect            // /ME…: an MCS links.content_direct_temporary
)

func (s *Server) signature(path string, expires int64) string {
	mac := hmac.New(sha256.New, s.signKey[:])
	mac.Write([]byte(path + "\n" + strconv.FormatInt(expires, 10) + "\n" + s.keyPairID))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func (s *Server) signedPath(h hop, acctSID string, media uint32) string {
	switch h {
	case hopDirect:
		return "/" + s.store.mediaSID(media)
	case hopEdge:
		return "/edge/" + acctSID + "/" + s.codec.encode(kindContentPath, media)
	default:
		return "/" + acctSID + "/" + s.codec.encode(kindContentPath, media)
	}
}

// signURL returns a signed URL for a media's bytes, valid SignedURLTTL
// (DirectURLTTL for an MCS direct link) from the emulator's now. Expires
// is in whole seconds and the URL is valid through that second.
func (s *Server) signURL(h hop, acctSID string, media uint32) string {
	path := s.signedPath(h, acctSID, media)
	ttl := s.cfg.SignedURLTTL
	if h == hopDirect {
		ttl = s.cfg.DirectURLTTL
	}
	exp := s.Now().Add(ttl).Unix()
	return s.signedURL + path + "?Expires=" + strconv.FormatInt(exp, 10) +
		"&Signature=" + s.signature(path, exp) + "&Key-Pair-Id=" + s.keyPairID
}

// parseSignedPath returns the hop and media a signed path names.
func (s *Server) parseSignedPath(path string) (h hop, acctSID string, media uint32, ok bool) {
	seg := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(seg) == 3 && seg[0] == "edge" {
		h, seg = hopEdge, seg[1:]
	}
	switch {
	case len(seg) == 1 && h == hopFirst:
		i, _, ok, err := s.codec.parseSID("media", seg[0], kindMedia, "ME")
		return hopDirect, "", i, ok && err == nil
	case len(seg) == 2:
		if _, shaped := checkSIDShape(seg[0], "AC"); !shaped {
			return 0, "", 0, false
		}
		i, ok := s.codec.decode(kindContentPath, strings.ToLower(seg[1]))
		return h, seg[0], i, ok
	}
	return 0, "", 0, false
}

func writeS3Error(w http.ResponseWriter, status int, code, message string) {
	type s3Error struct {
		XMLName xml.Name `xml:"Error"`
		Code    string   `xml:"Code"`
		Message string   `xml:"Message"`
	}
	body, err := xml.Marshal(s3Error{Code: code, Message: message})
	if err != nil {
		panic(err) // static shape
	}
	writeXML(w, status, body)
}

// serveSigned is the signed-URL listener's handler.
func (s *Server) serveSigned(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	hasAuth := r.Header.Get("Authorization") != ""
	rec := Request{Time: s.Now(), Host: "signed", Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
		Route: "signed.content", Authorization: hasAuth}
	sw := &trackedWriter{ResponseWriter: w, head: r.Method == http.MethodHead, finish: func(status int) {
		rec.Status, rec.Duration = status, time.Since(start)
		s.meter.record(rec)
	}}
	defer sw.done()
	s.meter.add(func(st *Stats) {
		st.SignedRequests++
		if hasAuth {
			st.SignedWithAuthorization++
		}
	})
	if hasAuth {
		// Never echo the header: it holds the client's secret.
		writeS3Error(sw, http.StatusBadRequest, "InvalidArgument",
			"Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		sw.Header().Set("Allow", "GET, HEAD")
		writeS3Error(sw, http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.")
		return
	}
	q := r.URL.Query()
	exp, err := strconv.ParseInt(q.Get("Expires"), 10, 64)
	sig := q.Get("Signature")
	if err != nil || sig == "" || q.Get("Key-Pair-Id") != s.keyPairID ||
		!hmac.Equal([]byte(sig), []byte(s.signature(r.URL.Path, exp))) {
		s.meter.add(func(st *Stats) { st.SignedRejected++ })
		writeS3Error(sw, http.StatusForbidden, "AccessDenied", "Invalid signature, or missing Expires, Signature or Key-Pair-Id.")
		return
	}
	if s.Now().Unix() > exp {
		s.meter.add(func(st *Stats) { st.SignedRejected++ })
		writeS3Error(sw, http.StatusForbidden, "AccessDenied", "Request has expired")
		return
	}
	h, acctSID, i, ok := s.parseSignedPath(r.URL.Path)

	st := s.store
	st.mu.RLock()
	ok = ok && int(i) < len(st.media)
	if ok && h != hopDirect {
		ok = st.accounts[st.mediaAccount(i)].sid == acctSID
	}
	gone := !ok || st.media[i].flags&mediaDeleted != 0 || s.vanishedLocked(i)
	var src contentSource
	var contentType, filename string
	var created int64
	if !gone {
		m := &st.media[i]
		src, contentType, filename, created = s.contentSourceLocked(i), st.mime.types[m.mime].contentType, st.filename(i), m.created
		acctSID = st.accounts[st.mediaAccount(i)].sid
	}
	st.mu.RUnlock()
	if gone {
		writeS3Error(sw, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
		return
	}
	if h == hopFirst && s.cfg.RedirectHops == 2 {
		s.redirect(sw, s.signURL(hopEdge, acctSID, i))
		return
	}
	s.serveContent(sw, r, src, contentType, filename, created)
}

// serveContent writes a media's bytes with its stored type, length and
// original filename, under the download faults in force.
func (s *Server) serveContent(w http.ResponseWriter, r *http.Request, src contentSource, contentType, filename string, created int64) {
	body, err := src.open()
	if err != nil {
		writeS3Error(w, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
		return
	}
	defer body.Close()
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.FormatInt(src.size, 10))
	h.Set("Content-Disposition", mime.FormatMediaType("inline", map[string]string{"filename": filename}))
	h.Set("Last-Modified", time.Unix(created, 0).UTC().Format(http.TimeFormat))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}

	f := s.Faults()
	limit, cut, reset := src.size, false, false
	if f.CutRate > 0 || f.ResetRate > 0 {
		switch d := s.draw(); {
		case d < f.CutRate:
			cut, limit = true, src.size/2
		case d < f.CutRate+f.ResetRate:
			reset, limit = true, src.size/2
		}
	}
	if cut || reset {
		s.meter.add(func(st *Stats) {
			if cut {
				st.CutBodies++
			} else {
				st.ResetBodies++
			}
		})
	}
	countBytes := func(n int) { s.meter.add(func(st *Stats) { st.ContentBytes += int64(n) }) }
	_, _ = copyPaced(r.Context(), w, io.LimitReader(body, limit), f.BodyBytesPerSecond, countBytes)
	if cut || reset {
		if tw, ok := w.(*trackedWriter); ok {
			tw.done() // logged before the client sees the connection end
		}
		breakConnection(w, reset)
	}
}

// breakConnection ends a response early: the bytes written so far reach the
// client, then the connection closes (FIN), or is reset (RST) when reset is
// true. Either way the client sees fewer bytes than Content-Length.
func breakConnection(w http.ResponseWriter, reset bool) {
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	conn, _, err := rc.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // the server closes the connection
	}
	if tcp, ok := conn.(*net.TCPConn); ok && reset {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}

// copyPaced copies src to w, at most rate bytes per second when rate is
// positive, flushing as it goes so that a slow body trickles. before runs
// ahead of each write (to count bytes the client may read at once).
func copyPaced(ctx context.Context, w http.ResponseWriter, src io.Reader, rate int64, before func(n int)) (int64, error) {
	chunk := int64(32 << 10)
	if rate > 0 {
		chunk = max(1, min(chunk, rate/20))
	}
	buf := make([]byte, chunk)
	rc := http.NewResponseController(w)
	start := time.Now()
	var written int64
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			before(n)
			m, werr := w.Write(buf[:n])
			written += int64(m)
			if werr != nil {
				return written, werr
			}
			if rate > 0 {
				_ = rc.Flush()
				due := start.Add(time.Duration(float64(written) / float64(rate) * float64(time.Second)))
				if wait := time.Until(due); wait > 0 {
					if err := sleep.For(ctx, wait); err != nil {
						return written, err
					}
				}
			}
		}
		if errors.Is(rerr, io.EOF) {
			return written, nil
		}
		if rerr != nil {
			return written, rerr
		}
	}
}
