package twiliotest

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
)

// Media Content Service (mcs.us1.twilio.com/v1): upload a file, fetch its
// Media resource, and download it through links.content (credentials, then
// a redirect) or links.content_direct_temporary (a signed URL, no
// credentials). Neither a list nor a DELETE is documented for MCS.

type mcsLinks struct {
	Content                string  `json:"content"`
	ContentDirectTemporary *string `json:"content_direct_temporary"`
}

type mcsMediaJSON struct {
	SID                 string   `json:"sid"`
	AccountSID          string   `json:"account_sid"`
	ServiceSID          string   `json:"service_sid"`
	ChannelSID          *string  `json:"channel_sid"`
	MessageSID          *string  `json:"message_sid"`
	DateCreated         string   `json:"date_created"`
	DateUploadUpdated   string   `json:"date_upload_updated"`
	DateUpdated         string   `json:"date_updated"`
	Size                int64    `json:"size"`
	ContentType         string   `json:"content_type"`
	Filename            *string  `json:"filename"`
	Author              string   `json:"author"`
	Category            string   `json:"category"`
	IsMultipartUpstream bool     `json:"is_multipart_upstream"`
	URL                 string   `json:"url"`
	Links               mcsLinks `json:"links"`
}

func (s *Server) mcsMediaJSONLocked(i uint32) mcsMediaJSON {
	st := s.store
	m := &st.media[i]
	acct := st.accounts[st.mediaAccount(i)].sid
	svc := st.serviceSID(st.mediaService(i))
	sid := st.mediaSID(i)
	path := "/v1/Services/" + svc + "/Media/" + sid
	direct := s.signURL(hopDirect, acct, i)
	j := mcsMediaJSON{
		SID: sid, AccountSID: acct, ServiceSID: svc,
		DateCreated: formatMCS(m.created), DateUploadUpdated: formatMCS(m.created), DateUpdated: formatMCS(m.created),
		Size: m.size, ContentType: st.mime.types[m.mime].contentType, Category: "media",
		URL: s.apiURL + path, Links: mcsLinks{Content: path + "/Content", ContentDirectTemporary: &direct},
	}
	if m.flags&mediaDetached != 0 {
		j.Author = st.uploads[m.parent].author
		if m.flags&mediaCustomName != 0 {
			name := st.names[i]
			j.Filename = &name
		}
	} else {
		cm := &st.convMsgs[m.parent]
		ch, im, name := st.convSID(cm.conv), st.convMsgSID(m.parent), st.filename(i)
		j.ChannelSID, j.MessageSID, j.Filename, j.Author = &ch, &im, &name, st.strs[cm.author]
	}
	return j
}

// mcsMediaOfLocked resolves ChatServiceSid and the media Sid of a call.
func (s *Server) mcsMediaOfLocked(c *call) (uint32, *twilioError) {
	svc, e := s.serviceOfLocked(c)
	if e != nil {
		return 0, e
	}
	sid := c.params[1]
	if _, ok := checkSIDShape(sid, "ME"); !ok {
		e := errInvalidParam("MediaSid", sid, "want ME followed by 32 hex digits")
		return 0, &e
	}
	i, ok := s.lookupMediaLocked(sid)
	if !ok || s.store.media[i].flags&mediaConversation == 0 || s.store.mediaService(i) != svc ||
		s.store.media[i].flags&mediaDeleted != 0 {
		e := errNotFound(c.r)
		return 0, &e
	}
	return i, nil
}

func (s *Server) fetchMCS(c *call) {
	st := s.store
	st.mu.RLock()
	i, e := s.mcsMediaOfLocked(c)
	if e != nil {
		st.mu.RUnlock()
		writeError(c.w, c.r, *e)
		return
	}
	body := s.mcsMediaJSONLocked(i)
	st.mu.RUnlock()
	writeJSON(c.w, http.StatusOK, body)
}

// contentMCS is links.content: it needs credentials and redirects to a
// signed URL like Messaging content.
func (s *Server) contentMCS(c *call) {
	st := s.store
	st.mu.RLock()
	i, e := s.mcsMediaOfLocked(c)
	vanished := e == nil && s.vanishedLocked(i)
	acct := st.accounts[c.acct].sid
	st.mu.RUnlock()
	if e != nil {
		writeError(c.w, c.r, *e)
		return
	}
	if vanished {
		s.meter.add(func(st *Stats) { st.VanishedContent++ })
		writeError(c.w, c.r, errNotFound(c.r))
		return
	}
	s.redirect(c.w, s.signURL(hopFirst, acct, i))
}

// uploadMCS takes a file as the raw body (its MIME type in Content-Type,
// ?Filename= optional) or as the "Media" part of a multipart/form-data body,
// spools it to disk and answers 201 with the Media resource.
func (s *Server) uploadMCS(c *call) {
	st := s.store
	st.mu.RLock()
	svc, e := s.serviceOfLocked(c)
	st.mu.RUnlock()
	if e != nil {
		writeError(c.w, c.r, *e)
		return
	}
	filename := c.r.URL.Query().Get("Filename")
	contentType, body, e := uploadBody(c.r, &filename)
	if e != nil {
		writeError(c.w, c.r, *e)
		return
	}
	f, err := os.CreateTemp(s.uploadDir, "mcs-*")
	if err != nil {
		writeError(c.w, c.r, newTwilioError(http.StatusInternalServerError, codeInternal, "Internal Server Error"))
		return
	}
	n, err := io.Copy(f, io.LimitReader(body, s.cfg.MaxUploadSize+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil || n > s.cfg.MaxUploadSize {
		_ = os.Remove(f.Name())
		if n > s.cfg.MaxUploadSize {
			writeError(c.w, c.r, newTwilioError(http.StatusRequestEntityTooLarge, 20413, // inferred code
				fmt.Sprintf("Media exceeds the maximum size of %d bytes", s.cfg.MaxUploadSize)))
			return
		}
		writeError(c.w, c.r, errInvalidParam("Media", "", "the upload did not complete: "+err.Error()))
		return
	}

	now := s.Now().Unix()
	st.mu.Lock()
	up := uint32(len(st.uploads))
	st.uploads = append(st.uploads, upload{path: f.Name(), author: "sender", account: c.acct, service: svc})
	i := uint32(len(st.media))
	rec := mediaRec{created: now, size: n, parent: up, mime: st.mime.intern(contentType),
		flags: mediaConversation | mediaDetached | mediaFile}
	if filename != "" {
		rec.flags |= mediaCustomName
		st.names[i] = filename
	}
	st.media = append(st.media, rec)
	out := s.mcsMediaJSONLocked(i)
	st.mu.Unlock()
	writeJSON(c.w, http.StatusCreated, out)
}

// uploadBody returns the file's type and bytes of an upload request.
func uploadBody(r *http.Request, filename *string) (string, io.Reader, *twilioError) {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		e := errInvalidParam("Content-Type", "", "the header must give the file's MIME type")
		return "", nil, &e
	}
	mediaType, params, err := mime.ParseMediaType(ct)
	if err != nil {
		e := errInvalidParam("Content-Type", ct, err.Error())
		return "", nil, &e
	}
	if mediaType != "multipart/form-data" {
		return ct, r.Body, nil
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			e := errInvalidParam("Media", "", "multipart/form-data body has no \"Media\" part")
			return "", nil, &e
		}
		if err != nil {
			e := errInvalidParam("Content-Type", ct, "unreadable multipart body: "+err.Error())
			return "", nil, &e
		}
		if part.FormName() != "Media" {
			continue
		}
		if *filename == "" {
			*filename = part.FileName()
		}
		partType := part.Header.Get("Content-Type")
		if partType == "" {
			partType = "application/octet-stream"
		}
		return partType, part, nil
	}
}
