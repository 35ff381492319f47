package main

import (
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/mediasync/mediasync/catalog"
)

func (a *app) restoreCmd() *cobra.Command {
	var runID, since, until string
	var messages, services []string
	var wait bool
	cmd := &cobra.Command{
		Use:   "restore (--run ID | --message SID… | --since DATE --until DATE) --service IS… [--wait]",
		Short: "Upload archived media into a Conversations service (MCS), recording old → new Media SIDs",
		Long: `Upload archived media back into Twilio, into the Media Content Service of
one or more Conversations services (--service, repeat or comma-separate):
the media a run archived (--run), the media of some messages (--message),
or those of messages sent in [since, until) (UTC days). Every file is read
back from the archive and its size and SHA-256 checked against those
recorded when it was archived before its last bytes are sent; each upload's
answer (size, type, filename) is checked against what was sent.

Each new Media SID is recorded in Postgres and, at the end, in a restore
manifest in the archive ({prefix}/_restores/{AccountSid}/restore-{id}.jsonl),
whose SHA-256 the status shows. The new Media are not attached to any
conversation message.

MCS cannot tell whether an upload whose answer was lost created a Media, so
a restore uploads each media at most once per service: such an upload ends
"unconfirmed" and the restore fails, naming it (see README.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec := catalog.RestoreSpec{MessageSIDs: messages, ServiceSIDs: services}
			var err error
			if runID != "" {
				if spec.FromRun, err = uuid.Parse(runID); err != nil || spec.FromRun == uuid.Nil {
					return usagef("--run %q is not a run id (a UUID printed by backfill, message or status)", runID)
				}
			}
			if since != "" || until != "" {
				if spec.Since, err = parseRunDay("--since", since); err != nil {
					return err
				}
				if spec.Until, err = parseRunDay("--until", until); err != nil {
					return err
				}
			}
			if err := spec.Validate(); err != nil {
				return invalid(err, flagName)
			}
			env, err := a.connect(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer env.close()
			spec.AccountSID, spec.Actor = env.cfg.Twilio.AccountSID, a.actorName()
			r, err := env.catalog.CreateRestore(cmd.Context(), spec)
			if err != nil {
				return invalid(err, flagName)
			}
			return a.startAndWait(cmd.Context(), env, r.ID, wait)
		},
	}
	cmd.Flags().StringVar(&runID, "run", "", "restore the media this run archived (its id)")
	cmd.Flags().StringSliceVar(&messages, "message", nil, "restore the media of these messages (SM…, MM… or IM…; repeat or comma-separate)")
	cmd.Flags().StringVar(&since, "since", "", "restore the media of messages sent from this UTC day, inclusive (YYYY-MM-DD)")
	cmd.Flags().StringVar(&until, "until", "", "… up to this UTC day, exclusive (YYYY-MM-DD)")
	cmd.Flags().StringSliceVar(&services, "service", nil, "Conversations service to upload into (IS…; repeat or comma-separate)")
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the restore until it ends; exit 1 if any media failed or is unconfirmed")
	_ = cmd.MarkFlagRequired("service")
	return cmd
}

func restoreProgressLine(st catalog.Status) string {
	n := st.Restores
	return fmt.Sprintf("restore %s %s: media %d, restored %d, unconfirmed %d, failed %d, pending %d, %s",
		st.ID, st.State, n.Total, n.Restored, n.Unconfirmed, n.Failed, n.Open(), humanBytes(n.Bytes))
}

// printRestore writes a restore's status, after its run and kind lines.
func printRestore(w io.Writer, st catalog.Status) {
	r, n := st.Restore, st.Restores
	switch {
	case r.FromRun != uuid.Nil:
		fmt.Fprintf(w, "scope:           media archived by run %s\n", r.FromRun)
	case len(r.MessageSIDs) > 0:
		fmt.Fprintf(w, "scope:           media of %d messages\n", len(r.MessageSIDs))
	default:
		fmt.Fprintf(w, "scope:           media of messages sent %s .. %s (UTC, until exclusive)\n", r.Since.Format(time.DateOnly), r.Until.Format(time.DateOnly))
	}
	for _, s := range r.ServiceSIDs {
		fmt.Fprintf(w, "service:         %s\n", s)
	}
	fmt.Fprintf(w, "state:           %s\n", st.State)
	if st.Error != "" {
		fmt.Fprintf(w, "error:           %s\n", st.Error)
	}
	fmt.Fprintf(w, "media selected:  %d (media × services)\n", n.Total)
	fmt.Fprintf(w, "media restored:  %d (verified against the archive record, size checked by Twilio's answer)\n", n.Restored)
	fmt.Fprintf(w, "media unconfirmed: %d (sent whole, no answer: a Media may exist; not uploaded again)\n", n.Unconfirmed)
	fmt.Fprintf(w, "media failed:    %d\n", n.Failed)
	fmt.Fprintf(w, "media pending:   %d\n", n.Open())
	if r.NotArchived > 0 {
		fmt.Fprintf(w, "not archived:    %d (in scope but with no archived copy: not restored)\n", r.NotArchived)
	}
	fmt.Fprintf(w, "bytes restored:  %d (%s)\n", n.Bytes, humanBytes(n.Bytes))
	if r.ManifestKey != "" && st.Finished() {
		fmt.Fprintf(w, "manifest:        %s\n", r.ManifestKey)
		fmt.Fprintf(w, "manifest sha256: %s\n", r.ManifestSHA256)
	}
	printElapsed(w, st)
	for _, f := range st.Failures {
		fmt.Fprintf(w, "failed:          %s: %s\n", f.SID, f.Reason)
	}
}
