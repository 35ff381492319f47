package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/mediasync/mediasync/catalog"
)

// parseRunID parses a run id argument.
func parseRunID(arg string) (uuid.UUID, error) {
	id, err := uuid.Parse(arg)
	if err != nil {
		return id, usagef("run id %q is not a run id (a UUID printed by backfill, message or runs)", arg)
	}
	return id, nil
}

func (a *app) runsCmd() *cobra.Command {
	var state, kind string
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "runs [--state S] [--kind K] [--limit N] [--json]",
		Short: "List runs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if state != "" && !catalog.ValidRunState(state) {
				return usagef("--state %q is not a run state (queued, running, succeeded, failed, cancelled)", state)
			}
			if kind != "" && !catalog.ValidRunKind(kind) {
				return usagef("--kind %q is not a run kind (backfill, message, policy, export, retry, verify)", kind)
			}
			if limit < 1 || limit > catalog.MaxRunsListed {
				return usagef("--limit %d: want 1 to %d", limit, catalog.MaxRunsListed)
			}
			return a.withEnv(cmd.Context(), false, func(env *env) error {
				runs, err := env.catalog.ListRuns(cmd.Context(), catalog.RunFilter{
					State: catalog.RunState(state), Kind: kind, Account: env.cfg.Twilio.AccountSID, Limit: limit})
				if err != nil {
					return err
				}
				if asJSON {
					out := struct {
						Runs []runJSON `json:"runs"`
					}{Runs: []runJSON{}}
					for _, r := range runs {
						out.Runs = append(out.Runs, toRunJSON(r))
					}
					return writeJSON(a.stdout, out)
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tCREATED\tKIND\tSTATE\tWHAT\tACTOR")
				for _, r := range runs {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.CreatedAt.UTC().Format(time.RFC3339),
						r.Kind, r.State, runWhat(r), r.Actor)
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "only runs in this state: queued, running, succeeded, failed or cancelled")
	cmd.Flags().StringVar(&kind, "kind", "", "only runs of this kind: backfill, message, policy, export, retry or verify")
	cmd.Flags().IntVar(&limit, "limit", catalog.DefaultRunsListed, "how many to list")
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON document: {\"runs\": [...]}")
	return cmd
}

// runWhat says in a few words what a run covers.
func runWhat(r catalog.Run) string {
	var parts []string
	switch {
	case r.MessageSID != "":
		parts = append(parts, r.MessageSID)
	case !r.Since.IsZero():
		parts = append(parts, day(r.Since)+".."+day(r.Until))
	}
	if r.Source == catalog.SourceConversations {
		parts = append(parts, "conversations")
	}
	if r.PolicyName != "" {
		parts = append(parts, "policy "+r.PolicyName)
	}
	if r.RetryOf != uuid.Nil {
		parts = append(parts, "retry of "+r.RetryOf.String())
	}
	if r.Kind == catalog.KindVerify {
		parts = append(parts, fmt.Sprintf("sample %g", r.VerifySample))
	}
	if r.Delete {
		parts = append(parts, "--delete")
	}
	if r.DryRun {
		parts = append(parts, "--dry-run")
	}
	if r.NoBodies {
		parts = append(parts, "--no-bodies")
	}
	return strings.Join(parts, " ")
}

func (a *app) failuresCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "failures <run-id> [--json]",
		Short: "List every failed item of a run, with the reason",
		Long: `failures lists every failed item of a run (status shows the first few of
each kind): media that failed, media kept aside as suspect, messages whose
media could not be listed, days (or a Conversations run's services) whose
listing failed, conversations whose scan failed, export media, and objects
a verify run found not matching. One line each: KIND SID REASON.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseRunID(args[0])
			if err != nil {
				return err
			}
			return a.withEnv(cmd.Context(), false, func(env *env) error {
				if _, err := env.catalog.GetRun(cmd.Context(), id); errors.Is(err, catalog.ErrRunNotFound) {
					return usagef("no run %s", id)
				} else if err != nil {
					return err
				}
				return a.printFailures(cmd.Context(), env.catalog, id, asJSON)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON document: {\"run_id\": ..., \"failures\": [...]}")
	return cmd
}

// printFailures writes every failure of a run, a page at a time: the JSON
// document is written as it is read, never held whole.
func (a *app) printFailures(ctx context.Context, cat *catalog.Catalog, id uuid.UUID, asJSON bool) error {
	w := a.stdout
	if asJSON {
		fmt.Fprintf(w, "{\n  \"run_id\": %q,\n  \"failures\": [", id.String())
	}
	n := 0
	for f, err := range cat.AllRunFailures(ctx, id) {
		if err != nil {
			return err
		}
		if asJSON {
			b, err := json.Marshal(failureJSON{Kind: f.Kind, SID: f.SID, Reason: f.Reason})
			if err != nil {
				return err
			}
			sep := ","
			if n == 0 {
				sep = ""
			}
			fmt.Fprintf(w, "%s\n    %s", sep, b)
		} else {
			fmt.Fprintf(w, "%s\t%s\t%s\n", f.Kind, f.SID, oneLine(f.Reason))
		}
		n++
	}
	if asJSON {
		if n > 0 {
			fmt.Fprint(w, "\n  ")
		}
		fmt.Fprintf(w, "],\n  \"total\": %d\n}\n", n)
	}
	return nil
}

func (a *app) cancelCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "cancel <run-id>",
		Short: "Stop a run: nothing more of it is listed, archived or deleted",
		Long: `cancel stops a queued or running run. From the moment it is recorded,
no task of the run lists, archives or deletes anything more; tasks already
handling a message finish the copy they are writing (a copy is never left
half-made) and send no DELETE. cancel returns once no DELETE of the run can
still reach Twilio: it may wait up to about 22 s for deletes already in
flight. The run ends cancelled, recorded in the audit log. Cancelling a
cancelled run again changes nothing.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseRunID(args[0])
			if err != nil {
				return err
			}
			return a.withEnv(cmd.Context(), false, func(env *env) error {
				_, cancelled, err := env.catalog.CancelRun(cmd.Context(), id, a.actorName())
				var fe *catalog.RunFinishedError
				switch {
				case errors.Is(err, catalog.ErrRunNotFound):
					return usagef("no run %s", id)
				case errors.As(err, &fe):
					return usagef("cannot cancel: %v", fe)
				case err != nil:
					return err
				}
				if cancelled {
					fmt.Fprintf(a.stdout, "run %s cancelled\n", id)
				} else {
					fmt.Fprintf(a.stdout, "run %s was already cancelled\n", id)
				}
				return nil
			})
		},
	}
}

func (a *app) retryCmd() *cobra.Command {
	var wait bool
	cmd := &cobra.Command{
		Use:   "retry <run-id> [--wait]",
		Short: "Queue again what a finished run failed, as a new run",
		Long: `retry starts a new run (kind retry) that does again what a finished run
failed: its failed days are listed again, its failed messages' media listed
again, and its failed or suspect media archived again (and, if the run
deleted, deleted). The finished run's record stays as it happened; the new
run names it (retry_of). While a retry of the run is queued or running,
retry prints that run's id instead of starting another.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseRunID(args[0])
			if err != nil {
				return err
			}
			return a.withEnv(cmd.Context(), true, func(env *env) error {
				r, created, err := env.catalog.CreateRetry(cmd.Context(), id, a.actorName())
				var fe *catalog.RunFinishedError
				switch {
				case errors.Is(err, catalog.ErrRunNotFound):
					return usagef("no run %s", id)
				case errors.As(err, &fe):
					return usagef("cannot retry: %v", fe)
				case errors.Is(err, catalog.ErrNotRetriable) || errors.Is(err, catalog.ErrNothingToRetry):
					return usagef("cannot retry: %v", err)
				case err != nil:
					return err
				}
				if created {
					return a.startAndWait(cmd.Context(), env, r.ID, wait)
				}
				fmt.Fprintf(a.stderr, "enqueue: a retry of run %s is already %s\n", id, r.State)
				return a.printAndWait(cmd.Context(), env, r.ID, wait)
			})
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the run until it ends; exit 1 if any media failed")
	return cmd
}

func (a *app) verifyCmd() *cobra.Command {
	var since, until, sample string
	var wait bool
	cmd := &cobra.Command{
		Use:   "verify [--since DATE --until DATE] [--sample P] [--wait]",
		Short: "Re-read archived objects and check each one's size and SHA-256 against the catalog",
		Long: `verify starts a run on the workers that reads back archived objects (those
of messages sent in [since, until), UTC days; default: all) and checks each
one's size and SHA-256 against the catalog, as restic check --read-data
does. --sample P reads a random share: a fraction in (0, 1] (0.1) or a
percentage in (0, 100] (10%). Each result and when it was read are
recorded on the media's row. With --wait it follows the run and exits 1
naming every object that does not match.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec := catalog.VerifySpec{Sample: 1}
			var err error
			if since != "" {
				if spec.Since, err = parseDay("--since", since); err != nil {
					return err
				}
			}
			if until != "" {
				if spec.Until, err = parseDay("--until", until); err != nil {
					return err
				}
			}
			if !spec.Since.IsZero() && !spec.Until.IsZero() && !spec.Since.Before(spec.Until) {
				return usagef("--since %s must be before --until %s (until is exclusive)", since, until)
			}
			if sample != "" {
				if spec.Sample, err = parseSample(sample); err != nil {
					return err
				}
			}
			env, err := a.connect(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer env.close()
			spec.AccountSID, spec.Actor = env.cfg.Twilio.AccountSID, a.actorName()
			r, err := env.catalog.CreateVerifyRun(cmd.Context(), spec)
			if err != nil {
				return invalid(err, flagName)
			}
			return a.startAndWait(cmd.Context(), env, r.ID, wait)
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "only media of messages sent on or after this UTC day")
	cmd.Flags().StringVar(&until, "until", "", "only media of messages sent before this UTC day")
	cmd.Flags().StringVar(&sample, "sample", "", "read a random share: a fraction in (0, 1] or a percentage like 10% (default: all)")
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the run until it ends; exit 1 naming every object that does not match")
	return cmd
}

// parseSample reads --sample: a fraction in (0, 1], or a percentage in
// (0, 100] with a % sign.
func parseSample(v string) (float64, error) {
	s, pct := strings.CutSuffix(strings.TrimSpace(v), "%")
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, usagef("--sample %q is not a fraction like 0.1 or a percentage like 10%%", v)
	}
	if pct {
		if !(f > 0 && f <= 100) {
			return 0, usagef("--sample %q: a percentage must be in (0, 100]", v)
		}
		return f / 100, nil
	}
	if !(f > 0 && f <= 1) {
		return 0, usagef("--sample %q: a fraction must be in (0, 1] (for a percentage, add %%)", v)
	}
	return f, nil
}

// printVerify writes what a verify run's status adds to a run's.
func printVerify(w io.Writer, st catalog.Status) {
	v := st.Verify
	fmt.Fprintf(w, "objects chosen:  %d\n", v.Total)
	fmt.Fprintf(w, "objects ok:      %d\n", v.OK)
	fmt.Fprintf(w, "mismatch:        %d\n", v.Mismatch)
	fmt.Fprintf(w, "missing:         %d\n", v.Missing)
	fmt.Fprintf(w, "not checked:     %d\n", v.Error)
	fmt.Fprintf(w, "objects pending: %d\n", v.Pending)
	fmt.Fprintf(w, "bytes read:      %d (%s)\n", v.Bytes, humanBytes(v.Bytes))
}
