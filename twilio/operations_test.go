package twilio

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/require"
)

// specFile is Twilio's OpenAPI document for REST API 2010-04-01, trimmed
// to Messages and Media (from twilio/twilio-oai, spec/json/twilio_api_v2010.json);
// conversationsSpecFile is Conversations v1, trimmed to Conversations, their
// Messages and Services (spec/json/twilio_conversations_v1.json). The
// Media Content Service has none.
const (
	specFile              = "testdata/openapi/twilio_api_v2010.messages-media.json"
	conversationsSpecFile = "testdata/openapi/twilio_conversations_v1.conversations-messages.json"
)

// operationsGolden lists the operations the client uses. Regenerate with
// UPDATE_GOLDEN=1 go test -run TestOperationDirectives ./twilio/.
const operationsGolden = "testdata/operations.golden"

// notInSpec marks a directive for an operation Twilio documents in prose
// but not in its OpenAPI documents: the media content download and the
// Media Content Service.
const notInSpec = "not-in-openapi"

type directive struct {
	fn, method, path string
	notInSpec        bool
	pos              token.Position
}

// directives parses the package's non-test sources and returns every
// //twilio:operation directive, and the exported service methods that
// wait on the network (take a context.Context first) without one or
// without a "Twilio API docs:" line.
func directives(t *testing.T) (found []directive, undocumented []string) {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		require.NoError(t, err)
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Recv == nil || !fn.Name.IsExported() {
				continue
			}
			recv := types(fn.Recv.List[0].Type)
			if !strings.HasSuffix(recv, "Service") {
				continue
			}
			full := recv + "." + fn.Name.Name
			var ops int
			var docs bool
			if fn.Doc != nil {
				for _, c := range fn.Doc.List {
					if rest, ok := strings.CutPrefix(c.Text, "//twilio:operation "); ok {
						fields := strings.Fields(rest)
						require.True(t, len(fields) == 2 || len(fields) == 3 && fields[2] == notInSpec,
							"%s: malformed directive %q", fset.Position(c.Pos()), c.Text)
						found = append(found, directive{fn: full, method: fields[0], path: fields[1],
							notInSpec: len(fields) == 3, pos: fset.Position(c.Pos())})
						ops++
					}
					if strings.HasPrefix(c.Text, "// Twilio API docs: https://www.twilio.com/docs/") {
						docs = true
					}
				}
			}
			takesCtx := len(fn.Type.Params.List) > 0 && types(fn.Type.Params.List[0].Type) == "context.Context"
			if takesCtx && (ops == 0 || !docs) {
				undocumented = append(undocumented, full)
			}
		}
	}
	return found, undocumented
}

func types(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.StarExpr:
		return types(e.X)
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return types(e.X) + "." + e.Sel.Name
	}
	return fmt.Sprintf("%T", e)
}

func loadSpec(t *testing.T) *openapi3.T { return loadSpecFile(t, specFile) }

func loadSpecFile(t *testing.T, file string) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(file)
	require.NoError(t, err)
	// Twilio's own examples break strict example checks (twilio-facts.md).
	require.NoError(t, doc.Validate(context.Background(), openapi3.DisableExamplesValidation()))
	return doc
}

func TestOperationDirectives(t *testing.T) {
	t.Parallel()
	docs := map[bool]*openapi3.T{false: loadSpec(t), true: loadSpecFile(t, conversationsSpecFile)}
	found, undocumented := directives(t)
	require.Empty(t, undocumented, "service methods without a //twilio:operation directive or Twilio API docs link")
	require.NotEmpty(t, found)

	var lines []string
	for _, d := range found {
		item := docs[strings.HasPrefix(d.path, "/v1/")].Paths.Value(d.path)
		var op *openapi3.Operation
		if item != nil {
			op = item.GetOperation(d.method)
		}
		if d.notInSpec {
			require.Nil(t, op, "%s: %s %s is in the OpenAPI document now: drop %q", d.pos, d.method, d.path, notInSpec)
			lines = append(lines, fmt.Sprintf("%s %s (%s) %s", d.method, d.path, notInSpec, d.fn))
			continue
		}
		require.NotNil(t, op, "%s: %s %s is not an operation of the OpenAPI document", d.pos, d.method, d.path)
		lines = append(lines, fmt.Sprintf("%s %s (%s) %s", d.method, d.path, op.OperationID, d.fn))
	}
	slices.Sort(lines)
	got := strings.Join(lines, "\n") + "\n"
	if os.Getenv("UPDATE_GOLDEN") != "" {
		require.NoError(t, os.WriteFile(operationsGolden, []byte(got), 0o644))
	}
	want, err := os.ReadFile(operationsGolden)
	require.NoError(t, err, "run with UPDATE_GOLDEN=1 to create it")
	require.Equal(t, string(want), got, "operations changed; rerun with UPDATE_GOLDEN=1 and review the diff")
}

// The SID checks are the document's own patterns, for every path
// parameter that names a SID.
func TestSIDPatternsMatchSpec(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, doc := range []*openapi3.T{loadSpec(t), loadSpecFile(t, conversationsSpecFile)} {
		checkSIDPatterns(t, doc, seen)
	}
	for _, p := range []string{"^AC[0-9a-fA-F]{32}$", "^(SM|MM)[0-9a-fA-F]{32}$", "^ME[0-9a-fA-F]{32}$",
		"^IS[0-9a-fA-F]{32}$", "^IM[0-9a-fA-F]{32}$"} {
		require.True(t, seen[p], "the documents no longer use %s", p)
	}
}

// checkSIDPatterns requires every SID pattern of doc's path parameters to
// have a validator. A path parameter without a pattern (ConversationSid,
// which may also be a unique name) is left to the client's own check.
func checkSIDPatterns(t *testing.T, doc *openapi3.T, seen map[string]bool) {
	t.Helper()
	for path, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			for _, p := range append(item.Parameters, op.Parameters...) {
				if p.Value == nil || p.Value.In != "path" || p.Value.Schema == nil || p.Value.Schema.Value == nil {
					continue
				}
				pattern := p.Value.Schema.Value.Pattern
				if pattern == "" {
					continue
				}
				_, known := sidPatterns[pattern]
				require.True(t, known, "%s parameter %s has pattern %q, which no validator checks", path, p.Value.Name, pattern)
				seen[pattern] = true
			}
		}
	}
}

// Every query parameter ListURI writes is one the operation declares.
func TestListQueryParametersMatchSpec(t *testing.T) {
	t.Parallel()
	doc := loadSpec(t)
	c, err := New(testAccount, WithAuthToken(testToken))
	require.NoError(t, err)
	at := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

	msgURI, err := c.Messages.ListURI(MessageListParams{To: "+1", From: "+2", DateSent: at, DateSentAfter: at, DateSentBefore: at, PageSize: 10})
	require.NoError(t, err)
	mediaURI, err := c.Media.ListURI(testMessage, MediaListParams{DateCreated: at, DateCreatedAfter: at, DateCreatedBefore: at, PageSize: 10})
	require.NoError(t, err)
	convURI, err := c.Conversations.ListURL("", ConversationListParams{StartDate: at, EndDate: at, State: ConversationClosed, PageSize: 10})
	require.NoError(t, err)
	svcConvURI, err := c.Conversations.ListURL(testService, ConversationListParams{StartDate: at, EndDate: at, State: ConversationActive, PageSize: 10})
	require.NoError(t, err)
	convMsgURI, err := c.ConversationMessages.ListURL(testService, testConv, ConversationMessageListParams{Order: OrderDesc, PageSize: 10})
	require.NoError(t, err)
	require.Contains(t, convURI, "StartDate=2024-01-02T03%3A04%3A05Z", "StartDate and EndDate go as ISO 8601")
	v1 := loadSpecFile(t, conversationsSpecFile)
	for uri, path := range map[string]string{
		msgURI:     "/2010-04-01/Accounts/{AccountSid}/Messages.json",
		mediaURI:   "/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media.json",
		convURI:    "/v1/Conversations",
		svcConvURI: "/v1/Services/{ChatServiceSid}/Conversations",
		convMsgURI: "/v1/Services/{ChatServiceSid}/Conversations/{ConversationSid}/Messages",
	} {
		d := doc
		if strings.HasPrefix(path, "/v1/") {
			d = v1
		}
		op := d.Paths.Value(path).GetOperation("GET")
		declared := map[string]bool{}
		for _, p := range op.Parameters {
			if p.Value.In == "query" {
				declared[p.Value.Name] = true
			}
		}
		u, err := url.Parse(uri)
		require.NoError(t, err)
		q, err := url.ParseQuery(u.RawQuery)
		require.NoError(t, err)
		require.NotEmpty(t, q)
		for name := range q {
			require.True(t, declared[name], "%s sends %q, which %s does not declare", path, name, op.OperationID)
		}
	}
}
