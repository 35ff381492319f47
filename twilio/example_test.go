package twilio_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/mediasync/mediasync/twilio"
)

// Example pages through a message's media. A stand-in server plays Twilio:
// two pages of one item each, the first pointing at the second through
// next_page_uri, which the client follows as given.
func Example() {
	const (
		account = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		message = "MMc26223853f8c46b4ab7dfaa6abba0a26"
		list    = "/2010-04-01/Accounts/" + account + "/Messages/" + message + "/Media.json"
	)
	pages := map[string]string{
		list + "?PageSize=1": `{"media_list": [{"sid": "ME0123456789abcdef0123456789abcdef", "parent_sid": "` + message + `",
			"content_type": "image/jpeg", "date_created": "Sun, 16 Aug 2015 15:53:54 +0000"}],
			"page": 0, "page_size": 1, "next_page_uri": "` + list + `?PageSize=1&Page=1&PageToken=PAME0123456789abcdef0123456789abcdef"}`,
		list + "?PageSize=1&Page=1&PageToken=PAME0123456789abcdef0123456789abcdef": `{"media_list": [{"sid": "MEfedcba9876543210fedcba9876543210",
			"parent_sid": "` + message + `", "content_type": "image/png", "date_created": "Sun, 16 Aug 2015 15:53:55 +0000"}],
			"page": 1, "page_size": 1, "next_page_uri": null}`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page, ok := pages[r.URL.RequestURI()]
		if !ok {
			http.Error(w, `{"code": 20404, "message": "not found", "status": 404}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, page)
	}))
	defer srv.Close()

	c, err := twilio.New(account, twilio.WithAuthToken("exampleAuthToken"), twilio.WithBaseURL(srv.URL))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	for m, err := range c.Media.All(ctx, message, twilio.MediaListParams{PageSize: 1}) {
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		fmt.Println(m.SID, m.ContentType, m.DateCreated.Format("2006-01-02 15:04:05"))
	}
	// Output:
	// ME0123456789abcdef0123456789abcdef image/jpeg 2015-08-16 15:53:54
	// MEfedcba9876543210fedcba9876543210 image/png 2015-08-16 15:53:55
}

// ExampleMediaService_Page shows the one-page-per-task form: the cursor a
// job stores is ListURI at first, then each page's NextPageURI.
func ExampleMediaService_Page() {
	c, err := twilio.New("ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", twilio.WithAuthToken("exampleAuthToken"))
	if err != nil {
		fmt.Println(err)
		return
	}
	cursor, err := c.Media.ListURI("MMc26223853f8c46b4ab7dfaa6abba0a26", twilio.MediaListParams{PageSize: 1000})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cursor)
	// A task then calls c.Media.Page(ctx, cursor), enqueues the page's
	// media, and stores page.NextPageURI as the next task's cursor.

	// Output:
	// /2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Messages/MMc26223853f8c46b4ab7dfaa6abba0a26/Media.json?PageSize=1000
}
