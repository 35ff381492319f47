package catalog

import (
	"regexp"
	"strconv"
	"strings"
)

// InvalidError is a rule of the catalog's data broken by a request
// (Policy.Validate, Hold.Validate, ExportSpec.Validate): it names the field
// at fault, the value given and why it is refused. Nothing was recorded.
type InvalidError struct {
	Field  string // the field at fault, as a user names it ("schedule", "delete-after"); "" for a rule across fields
	Value  string // the value given, quoted in the message; "" to leave it out
	Reason string // follows field and value; may name other fields as {field}
	Err    error  // the parse error, when that is the reason
}

func (e *InvalidError) Error() string { return e.Message(func(f string) string { return f }) }

func (e *InvalidError) Unwrap() error { return e.Err }

var fieldRef = regexp.MustCompile(`\{[a-z][a-z-]*\}`)

// Message is the error with each field called what name returns for it: the
// CLI passes its flags' names.
func (e *InvalidError) Message(name func(field string) string) string {
	reason := fieldRef.ReplaceAllStringFunc(e.Reason, func(ref string) string { return name(ref[1 : len(ref)-1]) })
	var parts []string
	if e.Field != "" {
		parts = append(parts, name(e.Field))
	}
	if e.Value != "" {
		parts = append(parts, strconv.Quote(e.Value))
	}
	s := strings.Join(parts, " ")
	if e.Err != nil {
		return s + ": " + e.Err.Error()
	}
	if s == "" {
		return reason
	}
	return s + " " + reason
}

// ValidNumber accepts what Twilio's To/From filters take: an E.164 number,
// optionally behind a channel prefix (whatsapp:, messenger: …).
func ValidNumber(s string) bool {
	if i := strings.IndexByte(s, ':'); i > 0 {
		s = s[i+1:]
	}
	if len(s) < 9 || len(s) > 16 || s[0] != '+' {
		return false
	}
	for _, r := range s[1:] {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// checkNumbers is the From/To rule a run, a policy, a hold and an export share.
func checkNumbers(fields ...string) error {
	for i := 0; i+1 < len(fields); i += 2 {
		if v := fields[i+1]; v != "" && !ValidNumber(v) {
			return &InvalidError{Field: fields[i], Value: v, Reason: "is not a phone number in E.164 form (+ then 8-15 digits) or a channel address like whatsapp:+15550100"}
		}
	}
	return nil
}
