package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/rs/zerolog"
)

// servePprof serves net/http/pprof on a loopback address, for profiling a
// worker under load (cmd/bench -worker-pprof). The address is loopback
// (config.CheckPprofAddr).
func servePprof(addr string, log zerolog.Logger) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("MEDIASYNC_PPROF_ADDR: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil {
			log.Error().Err(err).Msg("pprof endpoint")
		}
	}()
	log.Warn().Str("addr", l.Addr().String()).Msg("serving net/http/pprof: for profiling only")
	return nil
}
