package main

import (
	"errors"
	"fmt"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mediasync/mediasync/catalog"
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
	var spec, archiveAfter, deleteAfter, start, from, to, source string
	var services []string
	cmd := &cobra.Command{
		Use:   "set NAME --schedule SPEC [--archive-after DUR] [--delete-after DUR] [--start DATE] [--from NUMBER] [--to NUMBER] [--source messaging|conversations [--service IS…]]",
		Short: "Create or update a retention policy",
		Long: `Create or update a retention policy. At each tick of SPEC (a cron expression
in UTC such as "0 3 * * *", or "@every DUR") one run archives every media of
messages sent from the policy's watermark to now − --archive-after, then
deletes from Twilio the archived media of messages sent before
now − --delete-after. DUR is like 36h, 30d or 1d12h. The watermark starts at
--start (default: 400 days ago, the oldest Twilio keeps) and advances only
over windows that finished with nothing failed. --source conversations
archives Conversations media instead (created, for sent), of --service
(repeatable; default: the account's default service).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := catalog.Policy{Name: args[0], Schedule: spec, From: from, To: to, Source: source,
				Services: slices.Compact(slices.Sorted(slices.Values(services)))}
			var err error
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
				p.AccountSID = env.cfg.Twilio.AccountSID
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
	cmd.Flags().StringVar(&start, "start", "", "first day of the first window, YYYY-MM-DD (default: 400 days ago)")
	cmd.Flags().StringVar(&from, "from", "", "only messages from this number")
	cmd.Flags().StringVar(&to, "to", "", "only messages to this number")
	cmd.Flags().StringVar(&source, "source", catalog.SourceMessaging, "what to archive: messaging or conversations")
	cmd.Flags().StringSliceVar(&services, "service", nil, "conversations: a service SID (IS…), repeatable; default: the account's default service")
	_ = cmd.MarkFlagRequired("schedule")
	return cmd
}

func (a *app) policyListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List policies with their last run, watermark and oldest unarchived media",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withEnv(cmd.Context(), false, func(env *env) error {
				policies, err := env.catalog.Policies(cmd.Context(), env.cfg.Twilio.AccountSID)
				if err != nil {
					return err
				}
				now := time.Now()
				w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "NAME\tSCHEDULE\tARCHIVE AFTER\tDELETE AFTER\tWATERMARK (AGE)\tLAST RUN\tOLDEST UNARCHIVED")
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
					oldest := "none"
					if !h.OldestUnsaved.IsZero() {
						oldest = fmt.Sprintf("%s (%s, %d media)", h.OldestUnsaved.UTC().Format(time.DateOnly), age(now.Sub(h.OldestUnsaved)), h.OldestUnsavedN)
					}
					name := p.Name
					if p.Source == catalog.SourceConversations {
						name += " (conversations)"
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s (%s)\t%s\t%s\n", name, p.Schedule, schedule.FormatDuration(p.ArchiveAfter), del,
						p.Watermark.Format(time.DateTime), age(h.WatermarkAge), last, oldest)
				}
				return w.Flush()
			})
		},
	}
}

// age writes a duration in days, with a warning past 12 months: Twilio
// deletes MMS media after 13.
func age(d time.Duration) string {
	s := fmt.Sprintf("%.1fd", d.Hours()/24)
	if d > 365*24*time.Hour {
		s += " WARNING: past 12 months"
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
