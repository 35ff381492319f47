package worker

import (
	"net/http"
	"net/http/pprof"
	"time"
)

// pprofServer serves net/http/pprof, for profiling a worker under load
// (cmd/bench -worker-pprof). Its address is loopback
// (config.CheckPprofAddr): profiles reveal no secrets but cost CPU to take.
func pprofServer() *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
}
