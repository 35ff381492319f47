package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/objects"
	"github.com/mediasync/mediasync/jobs"
)

func (a *app) holdCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "hold", Short: "Legal holds: media they cover are never deleted from Twilio"}
	cmd.AddCommand(a.holdAddCmd(), a.holdListCmd(), a.holdReleaseCmd())
	return cmd
}

func (a *app) holdAddCmd() *cobra.Command {
	var reason, from, to, since, until string
	var messages []string
	cmd := &cobra.Command{
		Use:   "add --reason TEXT (--message SID… | --from NUMBER | --to NUMBER) [--since DATE --until DATE]",
		Short: "Place a legal hold",
		Long: `Place a legal hold. While it is active, no run and no command deletes from
Twilio a media it covers (checked immediately before each DELETE is sent),
whether the media was archived before or after the hold. It returns once no
DELETE of a covered media can still reach Twilio: it may wait up to about
22 s for deletes already in flight.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h := catalog.Hold{Reason: strings.TrimSpace(reason), MessageSIDs: messages, From: from, To: to}
			var err error
			if since != "" {
				if h.Since, err = parseDay("--since", since); err != nil {
					return err
				}
			}
			if until != "" {
				if h.Until, err = parseDay("--until", until); err != nil {
					return err
				}
			}
			if err := h.Validate(); err != nil {
				return invalid(err, flagName)
			}
			return a.withEnv(cmd.Context(), true, func(env *env) error {
				h.CreatedBy = a.actorName()
				h, err = env.catalog.AddHold(cmd.Context(), h)
				if err != nil {
					return invalid(err, flagName)
				}
				// The hold is in force now; the workers put S3 legal holds on
				// the covered objects where the bucket has Object Lock.
				if err := env.enqueuer.In(cmd.Context())(jobs.NewApplyHoldTask(env.queues, jobs.ApplyHoldPayload{HoldID: h.ID, Event: "added"})); err != nil {
					return fmt.Errorf("hold %d is in force, but its S3 legal holds were not queued (a worker reconciles them when the hold changes again): %w", h.ID, err)
				}
				fmt.Fprintf(a.stdout, "hold %d placed\n", h.ID)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the media are held (recorded in the audit log)")
	cmd.Flags().StringSliceVar(&messages, "message", nil, "hold these messages' media (repeat or comma-separate)")
	cmd.Flags().StringVar(&from, "from", "", "hold media of messages from this number")
	cmd.Flags().StringVar(&to, "to", "", "hold media of messages to this number")
	cmd.Flags().StringVar(&since, "since", "", "only messages sent on or after this UTC day")
	cmd.Flags().StringVar(&until, "until", "", "only messages sent before this UTC day")
	return cmd
}

// holdJSON is a hold as hold list --json prints it.
type holdJSON struct {
	ID            int64      `json:"id"`
	Reason        string     `json:"reason"`
	MessageSIDs   []string   `json:"message_sids,omitempty"`
	From          string     `json:"from,omitempty"`
	To            string     `json:"to,omitempty"`
	Since         *time.Time `json:"since,omitempty"`
	Until         *time.Time `json:"until,omitempty"`
	Active        bool       `json:"active"`
	CreatedBy     string     `json:"created_by"`
	CreatedAt     time.Time  `json:"created_at"`
	ReleasedAt    *time.Time `json:"released_at,omitempty"`
	ReleasedBy    string     `json:"released_by,omitempty"`
	ReleaseReason string     `json:"release_reason,omitempty"`
	// S3Unconfirmed counts covered objects whose S3 legal hold is not yet
	// confirmed; absent when the archive sets no S3 legal holds.
	S3Unconfirmed *int `json:"s3_unconfirmed,omitempty"`
}

func toHoldJSON(h catalog.Hold) holdJSON {
	return holdJSON{
		ID: h.ID, Reason: h.Reason, MessageSIDs: h.MessageSIDs, From: h.From, To: h.To,
		Since: jsonTime(h.Since), Until: jsonTime(h.Until), Active: h.ReleasedAt.IsZero(),
		CreatedBy: h.CreatedBy, CreatedAt: h.CreatedAt.UTC(), ReleasedAt: jsonTime(h.ReleasedAt),
		ReleasedBy: h.ReleasedBy, ReleaseReason: h.ReleaseReason,
	}
}

func (a *app) holdListCmd() *cobra.Command {
	var all, asJSON bool
	cmd := &cobra.Command{
		Use:   "list [--all] [--json]",
		Short: "List active holds (--all: released ones too)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withEnv(cmd.Context(), false, func(env *env) error {
				holds, err := env.catalog.Holds(cmd.Context(), all)
				if err != nil {
					return err
				}
				s3 := a.legalHoldStore(cmd.Context(), env)
				var unconfirmed map[int64]int
				if s3 != nil {
					if unconfirmed, err = env.catalog.UnconfirmedLegalHolds(cmd.Context(), s3.Location()); err != nil {
						return err
					}
				}
				if asJSON {
					out := struct {
						Holds []holdJSON `json:"holds"`
					}{Holds: []holdJSON{}}
					for _, h := range holds {
						j := toHoldJSON(h)
						if s3 != nil {
							n := unconfirmed[h.ID]
							j.S3Unconfirmed = &n
						}
						out.Holds = append(out.Holds, j)
					}
					return writeJSON(a.stdout, out)
				}
				w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				header := "ID\tCOVERS\tSENT\tREASON\tPLACED\tRELEASED"
				if s3 != nil {
					header += "\tS3 UNCONFIRMED"
				}
				fmt.Fprintln(w, header)
				for _, h := range holds {
					covers := "from " + h.From
					switch {
					case len(h.MessageSIDs) > 0:
						covers = "messages " + strings.Join(h.MessageSIDs, ",")
					case h.To != "":
						covers = "to " + h.To
					}
					sent := "any time"
					if !h.Since.IsZero() || !h.Until.IsZero() {
						sent = day(h.Since) + ".." + day(h.Until)
					}
					released := "active"
					if !h.ReleasedAt.IsZero() {
						released = fmt.Sprintf("%s by %s: %s", h.ReleasedAt.UTC().Format(time.DateTime), h.ReleasedBy, h.ReleaseReason)
					}
					fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s by %s\t%s", h.ID, covers, sent, h.Reason,
						h.CreatedAt.UTC().Format(time.DateTime), h.CreatedBy, released)
					if s3 != nil {
						fmt.Fprintf(w, "\t%d", unconfirmed[h.ID])
					}
					fmt.Fprintln(w)
				}
				if err := w.Flush(); err != nil {
					return err
				}
				if s3 != nil {
					return a.printUnconfirmed(cmd.Context(), env, s3.Location())
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "include released holds")
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON document: {\"holds\": [...]}")
	return cmd
}

// legalHoldStore returns the archive when it sets S3 legal holds (an S3
// bucket with Object Lock), for hold list to show what S3 has not yet
// confirmed; nil, with a note on stderr when it cannot tell, otherwise.
func (a *app) legalHoldStore(ctx context.Context, env *env) archive.Store {
	if c, err := archive.ParseURL(env.cfg.ArchiveURL); env.cfg.ArchiveURL == "" || err != nil || c.Scheme != objects.LocationS3 {
		return nil // only S3 has legal holds
	}
	store, _, err := archive.OpenStore(ctx, env.cfg.ArchiveURL)
	if err != nil {
		fmt.Fprintf(a.stderr, "S3 legal holds not shown: %v\n", err)
		return nil
	}
	lh, ok := store.(archive.LegalHolder)
	if !ok {
		return nil
	}
	on, err := lh.LegalHoldSupported(ctx)
	if err != nil {
		fmt.Fprintf(a.stderr, "S3 legal holds not shown: %v\n", err)
		return nil
	}
	if !on {
		return nil
	}
	return store
}

// maxUnconfirmedShown bounds hold list's list of unconfirmed objects; the
// counts per hold are complete.
const maxUnconfirmedShown = 20

// printUnconfirmed lists objects whose S3 legal hold is not yet confirmed
// to follow the holds in force: the workers' reconciler sets them.
func (a *app) printUnconfirmed(ctx context.Context, env *env, loc objects.Location) error {
	n := 0
	for o, err := range env.catalog.LegalHoldsToSync(ctx, loc) {
		if err != nil {
			return err
		}
		if n == maxUnconfirmedShown {
			fmt.Fprintln(a.stdout, "  … and more (see S3 UNCONFIRMED per hold)")
			break
		}
		if n == 0 {
			fmt.Fprintln(a.stdout, "\nS3 legal hold not yet confirmed (the workers retry these):")
		}
		fmt.Fprintf(a.stdout, "  %s\t%s\n", o.MediaSID, o.Key)
		n++
	}
	return nil
}

func day(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.DateOnly)
}

func (a *app) holdReleaseCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "release ID --reason TEXT",
		Short: "Release a hold; the next run that asks deletes what it covered",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id < 1 {
				return usagef("hold id %q is not a hold id (a number from hold list)", args[0])
			}
			if strings.TrimSpace(reason) == "" {
				return usagef("--reason is required: say why the hold is released")
			}
			return a.withEnv(cmd.Context(), true, func(env *env) error {
				if _, err := env.catalog.ReleaseHold(cmd.Context(), id, a.actorName(), strings.TrimSpace(reason)); err != nil {
					if errors.Is(err, catalog.ErrHoldNotFound) {
						return usagef("no active hold %d", id)
					}
					return err
				}
				if err := env.enqueuer.In(cmd.Context())(jobs.NewApplyHoldTask(env.queues, jobs.ApplyHoldPayload{HoldID: id, Event: "released"})); err != nil {
					return fmt.Errorf("hold %d is released, but lifting its S3 legal holds was not queued: %w", id, err)
				}
				fmt.Fprintf(a.stdout, "hold %d released\n", id)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the hold is released (recorded in the audit log)")
	return cmd
}

func (a *app) auditCmd() *cobra.Command {
	var since string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "audit [--since DATE] [--json] | audit verify",
		Short: "Print the audit log, or verify its hash chain",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var from time.Time
			if since != "" {
				var err error
				if from, err = parseDay("--since", since); err != nil {
					return err
				}
			}
			return a.withEnv(cmd.Context(), false, func(env *env) error {
				enc := json.NewEncoder(a.stdout)
				for e, err := range env.catalog.AuditLog(cmd.Context(), from) {
					if err != nil {
						return err
					}
					if asJSON {
						err = enc.Encode(e)
					} else {
						_, err = fmt.Fprintf(a.stdout, "%d\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.At.Format(time.RFC3339Nano), e.Actor, e.Action, e.Subject, e.Details)
					}
					if err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "only entries from this UTC day on")
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line")
	cmd.AddCommand(&cobra.Command{
		Use:   "verify",
		Short: "Prove nothing in the audit log was removed or changed, checking it against the anchors in the archive (exit 1 naming the first broken row)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withEnv(cmd.Context(), false, func(env *env) error {
				ctx := cmd.Context()
				anchors := func(func(objects.AuditAnchor, error) bool) {}
				if env.cfg.ArchiveURL != "" {
					store, prefix, err := archive.OpenStore(ctx, env.cfg.ArchiveURL)
					if err != nil {
						return err
					}
					anchors = archive.ListAuditAnchors(ctx, store, prefix, env.cfg.Twilio.AccountSID)
				}
				v, err := env.catalog.VerifyAudit(ctx, anchors)
				if err != nil {
					return err
				}
				if v.Broken != nil {
					return &runFailedError{fmt.Sprintf("audit log broken at row %d: %s (%d rows read)", v.Broken.ID, v.Broken.Reason, v.Rows)}
				}
				switch {
				case env.cfg.ArchiveURL == "":
					fmt.Fprintln(a.stderr, "warning: ARCHIVE_URL is not set, so the log was not checked against its anchors: rows removed from its end would go unnoticed")
				case v.Anchors == 0:
					fmt.Fprintln(a.stderr, "warning: no audit anchor in the archive yet (workers write one every few minutes): rows removed from the end of the log would go unnoticed")
				}
				fmt.Fprintf(a.stdout, "audit log verified: %d rows, chain intact", v.Rows)
				if v.Latest != nil {
					fmt.Fprintf(a.stdout, ", consistent with %d anchors in the archive (the latest at row %d)", v.Anchors, v.Latest.HeadID)
				}
				fmt.Fprintln(a.stdout)
				return nil
			})
		},
	})
	return cmd
}
