package worker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mediasync/mediasync/archive"
)

// readyProbeKey is the key /readyz asks the store for: it never exists,
// and an answer of "not found" is the store answering.
const readyProbeKey = "mediasync-readyz-probe"

// probe is one dependency /readyz asks.
type probe struct {
	name  string
	check func(context.Context) error
}

// health serves /livez and /readyz. Ready means the worker can do its work:
// Postgres, Redis and the archive answer, and it is not draining: from
// SIGTERM on it answers 503, so a load balancer or an orchestrator stops
// counting on it while its tasks in flight finish; /livez still answers,
// so nothing kills it for draining.
type health struct {
	draining atomic.Bool
	probes   []probe
}

// storeProbe is a probe of the archive: a Stat of a key that is never
// there. "Not found" is an answer; anything else (unreachable, denied) is
// not.
func storeProbe(store archive.Store, prefix string) func(context.Context) error {
	key := strings.TrimSuffix(prefix, "/") + "/" + readyProbeKey
	if prefix == "" {
		key = readyProbeKey
	}
	return func(ctx context.Context) error {
		_, err := store.Stat(ctx, key)
		if err == nil || errors.Is(err, archive.ErrNotFound) {
			return nil
		}
		return err
	}
}

func (h *health) livez(w http.ResponseWriter, _ *http.Request) {
	fmt.Fprintln(w, "ok")
}

// readyz answers 200 with each probe's "ok", or 503 naming what is not
// ready. Errors are named, not quoted: they may carry a URL.
func (h *health) readyz(w http.ResponseWriter, r *http.Request) {
	if h.draining.Load() {
		http.Error(w, "draining: finishing tasks in flight", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	var b strings.Builder
	for _, p := range h.probes {
		if err := p.check(ctx); err != nil {
			http.Error(w, p.name+" unreachable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(&b, "%s ok\n", p.name)
	}
	fmt.Fprint(w, b.String())
}

// handler serves the health endpoints and metrics. /healthz is /readyz
// under its old name, for probes set up before the two were split.
func (h *health) handler(metrics, ui http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	if ui != nil {
		mux.Handle("/ui/", ui)
	}
	mux.HandleFunc("GET /livez", h.livez)
	mux.HandleFunc("GET /readyz", h.readyz)
	mux.HandleFunc("GET /healthz", h.readyz)
	return mux
}
