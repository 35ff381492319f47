package main

import (
	"errors"
	"fmt"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/retention"
	"github.com/mediasync/mediasync/internal/schedule"
	"github.com/mediasync/mediasync/jobs"
)

// policyFlag names a policy's fields as policy set's flags.
func policyFlag(field string) string {
	if field == "name" {
		return "policy name"
	}
	return flagName(field)
}

func (a *app) policyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Retention policies that run themselves on the workers"}
	cmd.AddCommand(a.policySetCmd(), a.policyListCmd(), a.policyRemoveCmd(), a.policyRunCmd())
	return cmd
}

func (a *app) policySetCmd() *cobra.Command {
	var spec, archiveAfter, deleteAfter, start, from, to, kind, sample, source string
	var services []string
	var noBodies bool
	cmd := &cobra.Command{
		Use:   "set NAME --schedule SPEC [--archive-after DUR] [--delete-after DUR] [--start DATE] [--from NUMBER] [--to NUMBER] [--source messaging|conversations [--service IS…]] [--no-bodies]",
		Short: "Create or update a retention policy",
		Long: `Create or update a retention policy. At each tick of SPEC (a cron expression
in UTC such as "0 3 * * *", or "@every DUR") one run archives every media of
messages sent from the policy's watermark to now − --archive-after, then
deletes from Twilio the archived media of messages sent before
now − --delete-after. DUR is like 36h, 30d or 1d12h; --archive-after must be
shorter than Twilio's retention window (TWILIO_RETENTION_DAYS, default 400
days), or Twilio purges the media first. The watermark starts at
--start (default: the oldest day Twilio keeps, TWILIO_RETENTION_DAYS ago) and advances only
over windows that finished with nothing failed. --source conversations
archives Conversations media instead (created, for sent), of --service
(repeatable; default: the account's default service).

With --kind verify the policy archives nothing: at each tick it starts a
verify run (as enqueue verify does) that re-reads --sample of the archive
(a fraction in (0, 1] or a percentage like 5%; default: all).

With --no-bodies the policy's runs archive each message's record without
its body (Messaging only).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := catalog.Policy{Name: args[0], Schedule: spec, From: from, To: to, Kind: kind, Source: source, NoBodies: noBodies,
				Services: slices.Compact(slices.Sorted(slices.Values(services)))}
			var err error
			if sample != "" || kind == catalog.PolicyVerify {
				p.VerifySample = 1
			}
			if sample != "" {
				if p.VerifySample, err = parseSample(sample); err != nil {
					return err
				}
			}
			if archiveAfter != "" {
				if p.ArchiveAfter, err = schedule.ParseDuration(archiveAfter); err != nil {
					return usagef("--archive-after: %v", err)
				}
			}
			if deleteAfter != "" {
				if p.DeleteAfter, err = schedule.ParseDuration(deleteAfter); err != nil {
					return usagef("--delete-after: %v", err)
				}
				p.Delete = true
			}
			if start != "" {
				if p.Watermark, err = parseRunDay("--start", start); err != nil {
					return err
				}
			}
			if err := p.Validate(); err != nil {
				return invalid(err, policyFlag)
			}
			return a.withEnv(cmd.Context(), false, func(env *env) error {
				// Archiving at or past the window archives nothing: Twilio
				// has purged the media by then.
				if w := env.cfg.Twilio.Retention; p.Kind != catalog.PolicyVerify && p.ArchiveAfter >= w.Duration() {
					return usagef("--archive-after %s: Twilio purges messages and media after %s (TWILIO_RETENTION_DAYS=%d); archive sooner",
						archiveAfter, w, w.Days())
				}
				p.AccountSID = env.cfg.Twilio.AccountSID
				p.Lookback = env.cfg.Twilio.Retention.Duration() // a new policy starts at the oldest Twilio keeps
				created, err := env.catalog.SetPolicy(cmd.Context(), p, a.actorName())
				if err != nil {
					return invalid(err, policyFlag)
				}
				verb := "updated"
				if created {
					verb = "created"
				}
				fmt.Fprintf(a.stdout, "%s policy %s\n", verb, p.Name)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&spec, "schedule", "", `when to run: a cron expression in UTC ("0 3 * * *") or "@every DUR"`)
	cmd.Flags().StringVar(&archiveAfter, "archive-after", "", "archive messages once they are this old (default 0)")
	cmd.Flags().StringVar(&deleteAfter, "delete-after", "", "delete archived media from Twilio once their message is this old (default: never)")
	cmd.Flags().StringVar(&start, "start", "", "first day of the first window, YYYY-MM-DD (default: TWILIO_RETENTION_DAYS ago)")
	cmd.Flags().StringVar(&from, "from", "", "only messages from this number")
	cmd.Flags().StringVar(&to, "to", "", "only messages to this number")
	cmd.Flags().StringVar(&kind, "kind", catalog.PolicyArchive, "archive, or verify: re-read a share of the archive at each tick")
	cmd.Flags().StringVar(&sample, "sample", "", "--kind verify: the share of archived media each run re-reads (0.1 or 10%; default all)")
	cmd.Flags().StringVar(&source, "source", catalog.SourceMessaging, "what to archive: messaging or conversations")
	cmd.Flags().StringSliceVar(&services, "service", nil, "conversations: a service SID (IS…), repeatable; default: the account's default service")
	cmd.Flags().BoolVar(&noBodies, "no-bodies", false, "archive each message's record without its body")
	_ = cmd.MarkFlagRequired("schedule")
	return cmd
}

// policyJSON is a policy as policy list --json prints it.
type policyJSON struct {
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	Schedule string `json:"schedule"`
	Source   string `json:"source"` // messaging or conversations
	// Services are the Conversations services the policy lists (none: the
	// account's default service).
	Services            []string   `json:"services,omitempty"`
	ArchiveAfter        string     `json:"archive_after"`
	DeleteAfter         string     `json:"delete_after,omitempty"`
	VerifySample        float64    `json:"verify_sample,omitempty"`
	From                string     `json:"from,omitempty"`
	To                  string     `json:"to,omitempty"`
	NoBodies            bool       `json:"no_bodies,omitempty"`
	Watermark           time.Time  `json:"watermark"`
	WatermarkAgeSeconds int64      `json:"watermark_age_seconds"`
	LastTick            *time.Time `json:"last_tick,omitempty"`
	LastRun             *runJSON   `json:"last_run,omitempty"`
	OldestUnarchived    *time.Time `json:"oldest_unarchived,omitempty"`
	TwilioPurgesAt      *time.Time `json:"twilio_purges_at,omitempty"` // when Twilio purges the oldest unarchived media
	UnarchivedMedia     int        `json:"unarchived_media"`
	TwilioRetentionDays int        `json:"twilio_retention_days"`
	CreatedBy           string     `json:"created_by"`
	CreatedAt           time.Time  `json:"created_at"`
	UpdatedAt           time.Time  `json:"updated_at"`
}

func toPolicyJSON(h catalog.PolicyHealth, w retention.Window) policyJSON {
	p := h.Policy
	out := policyJSON{
		Name: p.Name, Kind: p.Kind, Schedule: p.Schedule, Source: p.Source, Services: p.Services, ArchiveAfter: schedule.FormatDuration(p.ArchiveAfter),
		VerifySample: p.VerifySample, From: p.From, To: p.To, NoBodies: p.NoBodies, Watermark: p.Watermark.UTC(),
		WatermarkAgeSeconds: int64(h.WatermarkAge.Seconds()), LastTick: jsonTime(p.LastTick),
		OldestUnarchived: jsonTime(h.OldestUnsaved), UnarchivedMedia: h.OldestUnsavedN, TwilioRetentionDays: w.Days(),
		CreatedBy: p.CreatedBy, CreatedAt: p.CreatedAt.UTC(), UpdatedAt: p.UpdatedAt.UTC(),
	}
	if p.Delete {
		out.DeleteAfter = schedule.FormatDuration(p.DeleteAfter)
	}
	if !h.OldestUnsaved.IsZero() {
		out.TwilioPurgesAt = jsonTime(w.PurgeAt(h.OldestUnsaved))
	}
	if h.LastRun != nil {
		r := toRunJSON(*h.LastRun)
		out.LastRun = &r
	}
	return out
}

func (a *app) policyListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [--json]",
		Short: "List policies with their last run, watermark and oldest unarchived media against Twilio's purge",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withEnv(cmd.Context(), false, func(env *env) error {
				policies, err := env.catalog.Policies(cmd.Context(), env.cfg.Twilio.AccountSID)
				if err != nil {
					return err
				}
				now, w := time.Now(), env.cfg.Twilio.Retention
				if asJSON {
					out := struct {
						Policies []policyJSON `json:"policies"`
					}{Policies: []policyJSON{}}
					for _, p := range policies {
						h, err := env.catalog.PolicyHealth(cmd.Context(), p, now)
						if err != nil {
							return err
						}
						out.Policies = append(out.Policies, toPolicyJSON(h, w))
					}
					return writeJSON(a.stdout, out)
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintf(a.stdout, "Twilio keeps messages and media %s (TWILIO_RETENTION_DAYS)\n", w)
				fmt.Fprintln(tw, "NAME\tSCHEDULE\tARCHIVE AFTER\tDELETE AFTER\tWATERMARK (AGE)\tLAST RUN\tOLDEST UNARCHIVED\tTWILIO PURGES IT")
				for _, p := range policies {
					h, err := env.catalog.PolicyHealth(cmd.Context(), p, now)
					if err != nil {
						return err
					}
					del := "never"
					if p.Delete {
						del = schedule.FormatDuration(p.DeleteAfter)
					}
					last := "none yet"
					if h.LastRun != nil {
						last = fmt.Sprintf("%s %s (%s)", h.LastRun.ID, h.LastRun.State, h.LastRun.CreatedAt.UTC().Format(time.DateTime))
					}
					oldest, purge := "none", "-"
					if !h.OldestUnsaved.IsZero() {
						oldest = fmt.Sprintf("%s (%s, %d media)", h.OldestUnsaved.UTC().Format(time.DateOnly), age(now.Sub(h.OldestUnsaved), w), h.OldestUnsavedN)
						purge = w.PurgeAt(h.OldestUnsaved).UTC().Format(time.DateOnly)
					}
					if p.Kind == catalog.PolicyVerify {
						fmt.Fprintf(tw, "%s\t%s\tverify, sample %g\t-\t-\t%s\t-\t-\n", p.Name, p.Schedule, p.VerifySample, last)
						continue
					}
					name := p.Name
					if p.Source == catalog.SourceConversations {
						name += " (conversations)"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s (%s)\t%s\t%s\t%s\n", name, p.Schedule, schedule.FormatDuration(p.ArchiveAfter), del,
						p.Watermark.Format(time.DateTime), age(h.WatermarkAge, w), last, oldest, purge)
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON document: {\"policies\": [...]}")
	return cmd
}

// age writes a duration in days, with a warning once it nears Twilio's
// retention window w, and once it is past it.
func age(d time.Duration, w retention.Window) string {
	s := fmt.Sprintf("%.1fd", d.Hours()/24)
	switch {
	case d > w.Duration():
		s += fmt.Sprintf(" WARNING: past Twilio's %s", w)
	case d > w.Warning():
		s += fmt.Sprintf(" WARNING: Twilio purges at %s", w)
	}
	return s
}

func (a *app) policyRemoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a policy (its runs and archive stay)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEnv(cmd.Context(), false, func(env *env) error {
				if err := env.catalog.RemovePolicy(cmd.Context(), args[0], a.actorName()); err != nil {
					if errors.Is(err, catalog.ErrPolicyNotFound) {
						return usagef("no policy named %q", args[0])
					}
					return err
				}
				fmt.Fprintf(a.stdout, "removed policy %s\n", args[0])
				return nil
			})
		},
	}
}

func (a *app) policyRunCmd() *cobra.Command {
	var wait bool
	cmd := &cobra.Command{
		Use:   "run NAME [--wait]",
		Short: "Run a policy now, outside its schedule",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEnv(cmd.Context(), true, func(env *env) error {
				run, _, err := env.catalog.StartPolicyRun(cmd.Context(), args[0], time.Now().UTC(), true, a.actorName())
				if errors.Is(err, catalog.ErrPolicyNotFound) {
					return usagef("no policy named %q", args[0])
				}
				if err != nil {
					return err
				}
				if err := env.enqueuer.In(cmd.Context())(jobs.NewStartRunTask(env.queues, run.ID)); err != nil {
					return err
				}
				fmt.Fprintln(a.stdout, run.ID)
				if !wait {
					return nil
				}
				return a.wait(cmd.Context(), env.catalog, run.ID)
			})
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the run until it ends; exit 1 if any media failed")
	return cmd
}
