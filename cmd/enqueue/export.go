package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/schedule"
)

func (a *app) exportCmd() *cobra.Command {
	var since, until, from, to, number, out, format, presign string
	var messages []string
	var wait bool
	var rsmfMaxEvents int
	cmd := &cobra.Command{
		Use:   "export --since DATE --until DATE [--from NUMBER] [--to NUMBER] [--number NUMBER] [--message SID…] --out URL [--format dir|zip|rsmf] [--presign DUR] [--wait]",
		Short: "Export archived media with re-verified checksums, for a reviewer",
		Long: `Export the archived media of messages sent in [since, until) (UTC days),
filtered by number or message, to a folder or a zip a reviewer can open
without mediasync. Every file is read back from the archive and its size
and SHA-256 compared with those recorded when it was archived; a missing or
altered file fails the export, naming it. The export holds the files as
{yyyy-mm-dd}/{MessageSid}/{MediaSid}{.ext}, manifest.jsonl, manifest.csv,
SHA256SUMS (sha256sum -c SHA256SUMS) and export.json.

--out is s3://bucket/prefix?… (as ARCHIVE_URL) or file:///dir; use an
empty destination for each export. With --format zip the export is one
object, mediasync-export-<id>.zip, streamed as it is built.

With --format rsmf the export is for eDiscovery review (Relativity Short
Message Format 2.0.0): one {yyyy-mm-dd}/{conversation}.{part}.rsmf per
conversation (the pair of numbers, or a Conversations CH…) per UTC day, split
at 10 000 events or 200 MB, each an RFC 5322 message whose rsmf.zip holds
rsmf_manifest.json (participants, events with their bodies from the archived
message records) and the media, re-verified; then manifest.jsonl (one line
per .rsmf), SHA256SUMS and export.json.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec := catalog.ExportSpec{From: from, To: to, Number: number, MessageSIDs: messages, Out: out, Format: format, RSMFMaxEvents: rsmfMaxEvents}
			var err error
			if spec.Since, err = parseRunDay("--since", since); err != nil {
				return err
			}
			if spec.Until, err = parseRunDay("--until", until); err != nil {
				return err
			}
			if presign != "" {
				if spec.Presign, err = schedule.ParseDuration(presign); err != nil {
					return usagef("--presign %q: %s", presign, err.Error())
				}
				if spec.Presign == 0 {
					return usagef("--presign %q: a presigned URL is valid for 1s to 7d", presign)
				}
			}
			if err := spec.Validate(); err != nil {
				return invalid(err, flagName)
			}
			if _, err := archive.ParseURL(spec.Out); err != nil {
				return invalid(&catalog.InvalidError{Field: "out", Err: err}, flagName)
			}
			env, err := a.connect(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer env.close()
			spec.AccountSID, spec.Actor = env.cfg.Twilio.AccountSID, a.actorName()
			e, err := env.catalog.CreateExport(cmd.Context(), spec)
			if err != nil {
				return invalid(err, flagName)
			}
			return a.startAndWait(cmd.Context(), env, e.ID, wait)
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "first UTC day, inclusive (YYYY-MM-DD)")
	cmd.Flags().StringVar(&until, "until", "", "UTC day to stop before, exclusive (YYYY-MM-DD)")
	cmd.Flags().StringVar(&from, "from", "", "only messages from this number")
	cmd.Flags().StringVar(&to, "to", "", "only messages to this number")
	cmd.Flags().StringVar(&number, "number", "", "only messages from or to this number")
	cmd.Flags().StringSliceVar(&messages, "message", nil, "only these messages (repeat or comma-separate)")
	cmd.Flags().StringVar(&out, "out", "", "destination: s3://bucket/prefix?… or file:///dir")
	cmd.Flags().StringVar(&format, "format", catalog.ExportDir, "dir (a file per media), zip (one zip, streamed) or rsmf (.rsmf files per conversation-day, for eDiscovery)")
	cmd.Flags().StringVar(&presign, "presign", "", "print presigned GET URLs valid this long (e.g. 24h, 7d; s3 only)")
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the export until it ends; exit 1 if any media failed")
	cmd.Flags().IntVar(&rsmfMaxEvents, "rsmf-max-events", 0, "events per .rsmf file, below Relativity's 10 000 (for tests)")
	_ = cmd.Flags().MarkHidden("rsmf-max-events")
	_ = cmd.MarkFlagRequired("since")
	_ = cmd.MarkFlagRequired("until")
	_ = cmd.MarkFlagRequired("out")
	cmd.AddCommand(a.exportListCmd())
	return cmd
}

// exportListJSON is an export as export list --json prints it.
type exportListJSON struct {
	runJSON
	exportJSON
}

func (a *app) exportListCmd() *cobra.Command {
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [--limit N] [--json]",
		Short: "List exports, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 {
				return usagef("--limit %d: want 1 or more", limit)
			}
			return a.withEnv(cmd.Context(), false, func(env *env) error {
				exports, err := env.catalog.ListExports(cmd.Context(), limit)
				if err != nil {
					return err
				}
				if asJSON {
					out := struct {
						Exports []exportListJSON `json:"exports"`
					}{Exports: []exportListJSON{}}
					for _, e := range exports {
						n, err := env.catalog.ExportCounts(cmd.Context(), e.ID)
						if err != nil {
							return err
						}
						st := toStatusJSON(catalog.Status{Run: e.Run, Export: &e, Exports: n}, nil)
						out.Exports = append(out.Exports, exportListJSON{runJSON: st.Run, exportJSON: *st.Export})
					}
					return writeJSON(a.stdout, out)
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tCREATED\tSTATE\tFORMAT\tRANGE\tMEDIA\tFAILED\tBYTES\tOUT")
				for _, e := range exports {
					n, err := env.catalog.ExportCounts(cmd.Context(), e.ID)
					if err != nil {
						return err
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s..%s\t%d\t%d\t%d\t%s\n", e.ID, e.CreatedAt.UTC().Format(time.RFC3339),
						e.State, e.Format, day(e.Since), day(e.Until), n.Total, n.Failed, n.Bytes, e.Out)
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 50, "how many to list")
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON document: {\"exports\": [...]}")
	return cmd
}

// printExport writes what an export's status adds to a run's.
func printExport(w io.Writer, st catalog.Status) {
	e, n := st.Export, st.Exports
	fmt.Fprintf(w, "out:             %s (%s)\n", e.Out, e.Format)
	filters := ""
	for _, f := range []struct{ name, v string }{{"from", e.From}, {"to", e.To}, {"number", e.Number}} {
		if f.v != "" {
			filters += fmt.Sprintf(" --%s %s", f.name, f.v)
		}
	}
	if len(e.MessageSIDs) > 0 {
		filters += fmt.Sprintf(" --message %d SIDs", len(e.MessageSIDs))
	}
	if filters != "" {
		fmt.Fprintf(w, "filters:        %s\n", filters)
	}
	fmt.Fprintf(w, "media selected:  %d\n", n.Total)
	fmt.Fprintf(w, "media exported:  %d (verified against the archive record)\n", n.Exported)
	fmt.Fprintf(w, "media failed:    %d\n", n.Failed)
	fmt.Fprintf(w, "media pending:   %d\n", n.Pending)
	if e.NotArchived > 0 {
		fmt.Fprintf(w, "not archived:    %d (in range but with no archived copy: not in the export)\n", e.NotArchived)
	}
	fmt.Fprintf(w, "bytes exported:  %d (%s)\n", n.Bytes, humanBytes(n.Bytes))
	if e.OutputKey != "" && st.State == catalog.RunSucceeded {
		fmt.Fprintf(w, "written:         %s\n", e.OutputKey)
		fmt.Fprintf(w, "manifest sha256: %s\n", e.ManifestSHA256)
		fmt.Fprintf(w, "SHA256SUMS sha256: %s\n", e.SumsSHA256)
	}
}

// presigned prints GET URLs for a finished export, when it asked for them:
// the zip, or export.json and the manifests.
func (a *app) presigned(ctx context.Context, st catalog.Status) error {
	e := st.Export
	if e == nil || e.Presign <= 0 || st.State != catalog.RunSucceeded || e.OutputKey == "" {
		return nil
	}
	store, root, err := archive.OpenStore(ctx, e.Out)
	if err != nil {
		return fmt.Errorf("presign: %w", err)
	}
	p, ok := store.(archive.Presigner)
	if !ok {
		return errors.New("presign: the destination cannot presign URLs")
	}
	keys := []string{e.OutputKey}
	switch e.Format {
	case catalog.ExportDir:
		for _, name := range []string{archive.ExportJSONLName, archive.ExportCSVName, archive.ExportSumsName} {
			keys = append(keys, archive.ExportKey(root, name))
		}
	case catalog.ExportRSMF: // no manifest.csv: manifest.jsonl lists the .rsmf files
		for _, name := range []string{archive.ExportJSONLName, archive.ExportSumsName} {
			keys = append(keys, archive.ExportKey(root, name))
		}
	}
	for _, k := range keys {
		u, err := p.PresignGet(ctx, k, e.Presign)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "presigned:       %s (valid %s) %s\n", path.Base(k), e.Presign, u)
	}
	return nil
}
