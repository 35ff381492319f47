package twiliotest

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"strconv"
)

// Twilio error codes the emulator answers with. 20003, 20404 and 20429 are
// documented (twilio-facts.md); the others are Twilio's generic codes for the
// HTTP status and are inferred: clients should branch on the status.
const (
	codeInvalidParameter = 20001 // inferred
	codeAuthenticate     = 20003
	codeMethodNotAllowed = 20004 // inferred
	codeForbidden        = 20403 // inferred (GET with a body)
	codeNotFound         = 20404
	codeTooManyRequests  = 20429
	codeInternal         = 20500 // inferred
	codeUnavailable      = 20503 // inferred
)

// twilioError is the body of every error answer of Twilio's REST APIs.
// twilio-go decodes `details` as an object: never emit it as a string.
type twilioError struct {
	Code     int    `json:"code"`
	Detail   string `json:"detail,omitempty"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

func newTwilioError(status, code int, message string) twilioError {
	return twilioError{
		Code:     code,
		Message:  message,
		MoreInfo: "https://www.twilio.com/docs/errors/" + strconv.Itoa(code),
		Status:   status,
	}
}

// writeError answers with Twilio's JSON error body, or its XML form when the
// request asked for .xml.
func writeError(w http.ResponseWriter, r *http.Request, e twilioError) {
	if isXMLRequest(r) {
		writeXMLError(w, e)
		return
	}
	writeJSON(w, e.Status, e)
}

func isXMLRequest(r *http.Request) bool {
	p := r.URL.Path
	return len(p) > 4 && p[len(p)-4:] == ".xml"
}

func writeXMLError(w http.ResponseWriter, e twilioError) {
	type restException struct {
		Code     int    `xml:"Code"`
		Message  string `xml:"Message"`
		MoreInfo string `xml:"MoreInfo"`
		Status   int    `xml:"Status"`
	}
	type response struct {
		XMLName       xml.Name      `xml:"TwilioResponse"`
		RestException restException `xml:"RestException"`
	}
	body, err := xml.Marshal(response{RestException: restException{e.Code, e.Message, e.MoreInfo, e.Status}})
	if err != nil {
		panic(err) // static types never fail to marshal
	}
	writeXML(w, e.Status, body)
}

func errNotFound(r *http.Request) twilioError {
	return newTwilioError(http.StatusNotFound, codeNotFound,
		fmt.Sprintf("The requested resource %s was not found", r.URL.Path))
}

func errInvalidParam(name, value, why string) twilioError {
	return newTwilioError(http.StatusBadRequest, codeInvalidParameter,
		fmt.Sprintf("Invalid %s %q: %s", name, value, why))
}

func errAuthenticate() twilioError {
	e := newTwilioError(http.StatusUnauthorized, codeAuthenticate, "Authenticate")
	e.Detail = "Your AccountSid or AuthToken was incorrect."
	return e
}

func errTooManyRequests() twilioError {
	return newTwilioError(http.StatusTooManyRequests, codeTooManyRequests, "Too Many Requests")
}

func errMethodNotAllowed(r *http.Request) twilioError {
	return newTwilioError(http.StatusMethodNotAllowed, codeMethodNotAllowed,
		fmt.Sprintf("Method %s not allowed on %s", r.Method, r.URL.Path))
}

// writeJSON answers with v as JSON. Like Twilio, it writes "&" in page
// URIs as is, not as \u0026.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err) // the emulator marshals only its own static shapes
	}
	body := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeXML answers with an XML document (the declaration is added).
func writeXML(w http.ResponseWriter, status int, body []byte) {
	doc := append([]byte(xml.Header), body...)
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(doc)))
	w.WriteHeader(status)
	_, _ = w.Write(doc)
}
