package twilio

import (
	"fmt"
	"net/http"
	"strings"
)

// Request kinds an observer is told (WithRequestObserver): few and fixed,
// so a metric labelled with them stays small; never a SID.
const (
	APIList          = "list"          // a page of Messages
	APIMessage       = "message"       // one Message
	APIMedia         = "media"         // a message's Media list, or one Media resource
	APIContent       = "content"       // media bytes: the API's content URL, a redirect hop, a signed URL
	APIDelete        = "delete"        // any DELETE (a media, a conversation message)
	APIConversations = "conversations" // Conversations v1 (conversations, their messages)
	APIMCS           = "mcs"           // a Media Content Service resource
	APIMCSUpload     = "mcs_upload"    // an MCS upload
)

// WithRequestObserver calls fn after every HTTP request the client sends,
// each attempt and each redirect hop, with the request's kind (the API*
// constants) and the response's status code, or 0 when no response came
// (a network error, a timeout). fn runs on the calling goroutine and must
// be quick and safe for concurrent use.
func WithRequestObserver(fn func(api string, status int)) Option {
	return func(o *options) error {
		if fn == nil {
			return fmt.Errorf("twilio: WithRequestObserver: observer is nil")
		}
		o.observe = fn
		return nil
	}
}

// observe tells the observer, if any, of one request sent.
func (c *Client) observe(r *request, resp *http.Response, err error) {
	if c.observer == nil {
		return
	}
	status := 0
	if err == nil && resp != nil {
		status = resp.StatusCode
	}
	c.observer(c.apiOf(r), status)
}

// apiOf names the kind of a request, from its host, method and path.
func (c *Client) apiOf(r *request) string {
	p := r.url.Path
	switch {
	case r.host == nil || strings.HasSuffix(p, "/Content"):
		return APIContent
	case r.method == http.MethodDelete:
		return APIDelete
	case r.host == &c.conversations:
		return APIConversations
	case r.host == &c.mcs && r.method == http.MethodPost:
		return APIMCSUpload
	case r.host == &c.mcs:
		return APIMCS
	case strings.HasSuffix(p, "/Messages.json"):
		return APIList
	case strings.HasSuffix(p, "/Media.json"), strings.Contains(p, "/Media/") && strings.HasSuffix(p, ".json"):
		return APIMedia
	case strings.Contains(p, "/Media/"):
		return APIContent
	default:
		return APIMessage
	}
}
