package testenv_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/mediasync/mediasync/internal/testenv"
)

// LeakOptions ignore an idle keep-alive connection but not a response
// body left open. Not parallel: goleak.Find looks at every goroutine of
// the process, so other tests must not be running.
func TestLeakOptionsStillCatchAnUnclosedBody(t *testing.T) {
	opts := append(testenv.LeakOptions(), goleak.IgnoreCurrent())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello")
	}))
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	// The server's own goroutines are not what is checked here.
	opts = append(opts, goleak.IgnoreAnyFunction("net/http.(*conn).serve"),
		goleak.IgnoreAnyFunction("net/http/httptest.(*Server).goServe.func1"))

	resp, err := client.Get(srv.URL)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	require.NoError(t, goleak.Find(opts...), "an idle connection is not a leak")

	resp, err = client.Get(srv.URL)
	require.NoError(t, err)
	require.Error(t, goleak.Find(opts...), "a body left open is a leak")
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
}
