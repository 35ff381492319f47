package worker

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// /readyz names the first dependency that does not answer, and only its
// name (an error may quote a URL with credentials); /livez answers as long
// as the process serves.
func TestReadyzNamesWhatIsDown(t *testing.T) {
	up := func(context.Context) error { return nil }
	down := func(context.Context) error { return errors.New("dial tcp postgres://user:secret@db: refused") }
	tests := []struct {
		name     string
		probes   []probe
		draining bool
		code     int
		body     string
	}{
		{"all up", []probe{{"postgres", up}, {"redis", up}, {"store", up}}, false, 200, "postgres ok\nredis ok\nstore ok\n"},
		{"postgres down", []probe{{"postgres", down}, {"redis", up}}, false, 503, "postgres unreachable\n"},
		{"store down", []probe{{"postgres", up}, {"store", down}}, false, 503, "store unreachable\n"},
		{"draining", []probe{{"postgres", up}}, true, 503, "draining: finishing tasks in flight\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &health{probes: tt.probes}
			h.draining.Store(tt.draining)
			srv := httptest.NewServer(h.handler(http.NotFoundHandler(), nil))
			defer srv.Close()
			for _, path := range []string{"/readyz", "/healthz"} {
				code, body := get(t, srv.URL+path)
				if code != tt.code || body != tt.body {
					t.Errorf("%s = %d %q, want %d %q", path, code, body, tt.code, tt.body)
				}
				if strings.Contains(body, "secret") {
					t.Errorf("%s leaks the error's text: %q", path, body)
				}
			}
			if code, _ := get(t, srv.URL+"/livez"); code != 200 {
				t.Errorf("/livez = %d, want 200 whatever the dependencies", code)
			}
		})
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
