package twiliotest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// Every kind of successful answer is validated against Twilio's OpenAPI
// documents (testdata/openapi, copies of twilio/twilio-oai trimmed to the
// calls mediasync makes). The documents declare no required fields and allow
// extra ones, so the test also requires the emulator to emit exactly the
// properties the schema declares (Twilio sends every field, null or not),
// and checks date formats the validator leaves alone.

type spec struct {
	doc    *openapi3.T
	router routers.Router
	host   string
}

var loadSpecs = sync.OnceValues(func() ([]spec, error) {
	var out []spec
	for _, f := range []struct{ file, host string }{
		{"testdata/openapi/twilio_api_v2010.messages-media.json", "api.twilio.com"},
		{"testdata/openapi/twilio_conversations_v1.conversations-messages.json", "conversations.twilio.com"},
	} {
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromFile(f.file)
		if err != nil {
			return nil, err
		}
		if err := doc.Validate(context.Background(), openapi3.DisableExamplesValidation()); err != nil {
			return nil, err
		}
		router, err := gorillamux.NewRouter(doc)
		if err != nil {
			return nil, err
		}
		out = append(out, spec{doc: doc, router: router, host: f.host})
	}
	return out, nil
})

// validateAnswer checks an emulator answer to (method, path) against the
// operation the OpenAPI documents declare for it and returns its decoded
// body.
func validateAnswer(t *testing.T, method, path string, resp *http.Response, body []byte) map[string]any {
	t.Helper()
	specs, err := loadSpecs()
	require.NoError(t, err)
	host := "api.twilio.com"
	if strings.HasPrefix(path, "/v1/") {
		host = "conversations.twilio.com"
	}
	var sp spec
	for _, s := range specs {
		if s.host == host {
			sp = s
		}
	}
	req, err := http.NewRequestWithContext(t.Context(), method, "https://"+host+path, nil)
	require.NoError(t, err)
	route, params, err := sp.router.FindRoute(req)
	require.NoError(t, err, "%s %s is not an operation of the OpenAPI document", method, path)

	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                opts,
	}
	require.NoError(t, openapi3filter.ValidateResponse(t.Context(), in), "%s %s answered %d: %s", method, path, resp.StatusCode, body)
	// The query the test sent must be valid for the operation too. (The
	// document gives date filters format date-time although Twilio's own
	// examples use other forms: those are tested in filters_test.go.)
	reqIn := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	require.NoError(t, openapi3filter.ValidateRequest(t.Context(), reqIn))

	if resp.StatusCode == http.StatusNoContent {
		require.Empty(t, body)
		return nil
	}
	var decoded map[string]any
	require.NoError(t, json.Unmarshal(body, &decoded))
	schema := route.Operation.Responses.Status(resp.StatusCode).Value.Content.Get("application/json").Schema.Value
	requireExactProperties(t, path, schema, decoded)
	return decoded
}

// requireExactProperties requires obj to have exactly the properties of
// schema, recursing into list items and the meta object.
func requireExactProperties(t *testing.T, where string, schema *openapi3.Schema, obj map[string]any) {
	t.Helper()
	want := slices.Sorted(maps.Keys(schema.Properties))
	got := slices.Sorted(maps.Keys(obj))
	require.Equal(t, want, got, "properties of %s", where)
	for name, prop := range schema.Properties {
		v := obj[name]
		switch {
		case prop.Value.Type.Is("array") && prop.Value.Items != nil && len(prop.Value.Items.Value.Properties) > 0:
			items, ok := v.([]any)
			require.True(t, ok, "%s.%s is not an array", where, name)
			for _, it := range items {
				requireExactProperties(t, where+"."+name+"[]", prop.Value.Items.Value, it.(map[string]any))
			}
		case prop.Value.Type.Is("object") && len(prop.Value.Properties) > 0:
			requireExactProperties(t, where+"."+name, prop.Value, v.(map[string]any))
		}
		if format := prop.Value.Format; format == "date-time-rfc-2822" && v != nil {
			requireRFC2822(t, v.(string))
		} else if format == "date-time" && v != nil {
			_, err := time.Parse(time.RFC3339, v.(string))
			require.NoError(t, err, "%s.%s is not ISO 8601", where, name)
		}
	}
}

func requireRFC2822(t *testing.T, s string) {
	t.Helper()
	tm, err := time.Parse(time.RFC1123Z, s)
	require.NoError(t, err, "%q is not RFC 2822", s)
	require.True(t, strings.HasSuffix(s, " +0000"), "%q is not in GMT", s)
	require.Equal(t, s, tm.Format(time.RFC1123Z))
}

func TestOpenAPIMessagingAnswers(t *testing.T) {
	t.Parallel()
	b := setup(t, twiliotest.Config{})
	_, err := b.srv.Generate(b.acct.SID, twiliotest.Dataset{Messages: 30, MinMediaPerMessage: 2, NoMediaShare: -1, MaxMediaSize: 4096})
	require.NoError(t, err)

	check := func(method, path string) map[string]any {
		t.Helper()
		resp, body := b.request(t, method, path, true)
		return validateAnswer(t, method, path, resp, body)
	}
	list := check(http.MethodGet, b.messagesPath()+"?"+url.Values{"DateSent>": {"2019-06-19T22:04:00Z"}, "PageSize": {"4"}}.Encode())
	next := list["next_page_uri"].(string)
	page1 := check(http.MethodGet, next)
	check(http.MethodGet, page1["previous_page_uri"].(string))
	check(http.MethodGet, b.messagesPath()+"?To=%2B10000000000") // an empty list

	msg := list["messages"].([]any)[0].(map[string]any)
	msgSID := msg["sid"].(string)
	check(http.MethodGet, "/2010-04-01/Accounts/"+b.acct.SID+"/Messages/"+msgSID+".json")
	media := check(http.MethodGet, msg["subresource_uris"].(map[string]any)["media"].(string)+"?PageSize=1")
	check(http.MethodGet, media["next_page_uri"].(string))
	one := media["media_list"].([]any)[0].(map[string]any)
	check(http.MethodGet, one["uri"].(string))
	check(http.MethodDelete, one["uri"].(string))
	check(http.MethodDelete, "/2010-04-01/Accounts/"+b.acct.SID+"/Messages/"+msgSID+".json")
}

func TestOpenAPIConversationsAnswers(t *testing.T) {
	t.Parallel()
	b := setup(t, twiliotest.Config{})
	_, err := b.srv.Generate(b.acct.SID, twiliotest.Dataset{Messages: 1, Conversations: 5, ConversationMessages: 5, MaxConversationMedia: 2, MaxMediaSize: 4096})
	require.NoError(t, err)

	checkMethod := func(method, path string) map[string]any {
		t.Helper()
		resp, body := b.request(t, method, path, true)
		return validateAnswer(t, method, strings.TrimPrefix(path, b.srv.URL()), resp, body)
	}
	check := func(path string) map[string]any {
		t.Helper()
		return checkMethod(http.MethodGet, path)
	}
	list := check("/v1/Conversations?PageSize=2")
	meta := list["meta"].(map[string]any)
	require.Equal(t, "conversations", meta["key"])
	require.True(t, strings.HasPrefix(meta["next_page_url"].(string), b.srv.URL()+"/v1/Conversations?"), "meta URLs are absolute")
	check(meta["next_page_url"].(string))
	check("/v1/Services/" + b.acct.ServiceSID + "/Conversations?StartDate=2020-01-01&EndDate=2100-01-01&State=active")

	cv := list["conversations"].([]any)[0].(map[string]any)
	for _, order := range []string{"asc", "desc"} {
		msgs := check("/v1/Conversations/" + cv["sid"].(string) + "/Messages?Order=" + order + "&PageSize=2")
		require.Equal(t, "messages", msgs["meta"].(map[string]any)["key"])
		check(msgs["meta"].(map[string]any)["next_page_url"].(string))
		check("/v1/Services/" + b.acct.ServiceSID + "/Conversations/" + cv["sid"].(string) + "/Messages?Order=" + order)
	}
	check("/v1/Services/" + b.acct.ServiceSID + "/Conversations?StartDate=2020-01-01T00:00:00Z&EndDate=2100-01-01T23:59:59Z&PageSize=100")
	check("/v1/Conversations?State=initializing")

	// Fetch and delete a message, on both paths.
	msgs := check("/v1/Services/" + b.acct.ServiceSID + "/Conversations/" + cv["sid"].(string) + "/Messages")["messages"].([]any)
	require.GreaterOrEqual(t, len(msgs), 2)
	for i, prefix := range []string{"/v1/Services/" + b.acct.ServiceSID, "/v1"} {
		sid := msgs[i].(map[string]any)["sid"].(string)
		path := prefix + "/Conversations/" + cv["sid"].(string) + "/Messages/" + sid
		got := check(path)
		require.Equal(t, sid, got["sid"])
		checkMethod(http.MethodDelete, path)
	}
}
