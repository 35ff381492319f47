package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// scripts returns how many scripts (EVALSHA and EVAL) the scenario's Redis
// has run, from INFO commandstats. The pipeline's Redis round trips are
// nearly all scripts: asynq's, and the Twilio limiter's (issue #14). The
// commands a script calls are counted in commandstats too, so a count of
// all commands would say little about round trips.
func (r *redisServer) scripts(ctx context.Context) (int64, error) {
	info, err := r.client.InfoMap(ctx, "commandstats").Result()
	if err != nil {
		return 0, err
	}
	var n int64
	for _, name := range []string{"cmdstat_evalsha", "cmdstat_eval"} {
		for _, field := range strings.Split(info["Commandstats"][name], ",") {
			if v, ok := strings.CutPrefix(field, "calls="); ok {
				calls, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return 0, fmt.Errorf("INFO commandstats %s: %w", name, err)
				}
				n += calls
			}
		}
	}
	return n, nil
}

// printRedisScripts prints the scripts the scenario's Redis ran per Twilio
// API request.
func printRedisScripts(w io.Writer, outcomes []outcome) {
	fmt.Fprintln(w, "\nRedis scripts per Twilio API request (EVALSHA + EVAL on the scenario's Redis during the run: asynq's and the limiter's):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, o := range outcomes {
		fmt.Fprintf(tw, "  %s\t%.2f\t(%d scripts, %d requests)\n", o.label(), ratioOf(float64(o.pipe.redisScripts), float64(o.pipe.requests)),
			o.pipe.redisScripts, o.pipe.requests)
	}
	tw.Flush()
}
