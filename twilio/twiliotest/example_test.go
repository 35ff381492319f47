package twiliotest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// An emulator with one message and its media: list the media, then download
// the content through the redirect to the signed host.
func ExampleNewServer() {
	srv, err := twiliotest.NewServer(twiliotest.Config{Seed: 1})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	acct, err := srv.AddAccount(twiliotest.AccountOptions{})
	if err != nil {
		panic(err)
	}
	msg, err := srv.AddMessage(acct.SID, twiliotest.MessageOptions{
		Body:  "the photo",
		Media: []twiliotest.MediaOptions{{ContentType: "image/jpeg", Filename: "site.jpg", Content: []byte("jpeg bytes")}},
	})
	if err != nil {
		panic(err)
	}

	get := func(path string) *http.Response {
		req, err := http.NewRequest(http.MethodGet, srv.URL()+path, nil)
		if err != nil {
			panic(err)
		}
		req.SetBasicAuth(acct.SID, acct.AuthToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		return resp
	}
	resp := get("/2010-04-01/Accounts/" + acct.SID + "/Messages/" + msg.SID + "/Media.json")
	var page struct {
		MediaList []struct {
			SID         string `json:"sid"`
			ContentType string `json:"content_type"`
		} `json:"media_list"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, len(page.MediaList), page.MediaList[0].ContentType)

	// Go's client follows the redirect and, the host name changing, drops
	// the credentials: the signed host sees none.
	resp = get("/2010-04-01/Accounts/" + acct.SID + "/Messages/" + msg.SID + "/Media/" + page.MediaList[0].SID)
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(string(body), resp.Header.Get("Content-Disposition"))
	fmt.Println("credentials sent to the signed host:", srv.Stats().SignedWithAuthorization)
	// Output:
	// 200 1 image/jpeg
	// jpeg bytes inline; filename=site.jpg
	// credentials sent to the signed host: 0
}
