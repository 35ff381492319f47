package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/retention"
	"github.com/mediasync/mediasync/internal/sleep"
)

// wait follows a run until it ends: a live bar on a terminal, a plain line
// every few seconds otherwise (logs, CI). It returns a runFailedError when
// the run finished with failures.
func (a *app) wait(ctx context.Context, cat *catalog.Catalog, id uuid.UUID) error {
	poll := a.pollInterval
	if poll == 0 {
		poll = time.Second
	}
	var bar *progressbar.ProgressBar
	if f, ok := a.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		bar = progressbar.NewOptions64(-1,
			progressbar.OptionSetWriter(a.stderr),
			progressbar.OptionSetDescription("media"),
			progressbar.OptionShowCount(),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionClearOnFinish())
	}
	lastLine, began, warned := time.Time{}, time.Now(), false
	for {
		st, err := cat.RunStatus(ctx, id)
		if err != nil {
			return err
		}
		done := st.MediaDone()
		switch {
		case bar != nil:
			if st.MediaFound > 0 {
				bar.ChangeMax64(int64(st.MediaFound))
			}
			bar.Describe(fmt.Sprintf("%s: %d messages, %d archived, %d deleted, %d failed",
				st.State, st.MessagesSeen, st.MediaArchived, st.MediaDeleted, st.MediaFailed))
			_ = bar.Set64(int64(done))
		case time.Since(lastLine) >= 5*poll || st.Finished():
			fmt.Fprintf(a.stderr, "%s %s\n", time.Now().UTC().Format(time.TimeOnly), progressLine(st))
			lastLine = time.Now()
		}
		if st.State == catalog.RunQueued && !warned && time.Since(began) > 30*time.Second {
			fmt.Fprintf(a.stderr, "enqueue: no worker has started run %s yet: is one running on the same REDIS_URL and MEDIASYNC_NAMESPACE?\n", id)
			warned = true
		}
		if st.Finished() {
			if bar != nil {
				_ = bar.Finish()
			}
			if err := a.printStatus(ctx, cat, st); err != nil {
				return err
			}
			if !a.asJSON {
				if err := a.presigned(ctx, st); err != nil {
					return err
				}
			}
			switch {
			case st.State == catalog.RunCancelled:
				return &runFailedError{fmt.Sprintf("run %s was cancelled (%s): it did not finish", id, st.Error)}
			case st.State == catalog.RunFailed && st.Kind == catalog.KindVerify:
				return a.verifyFailed(ctx, cat, st)
			case st.State == catalog.RunFailed:
				return &runFailedError{fmt.Sprintf("run %s finished with failures", id)}
			}
			return nil
		}
		if err := sleep.For(ctx, poll); err != nil {
			return fmt.Errorf("stopped waiting (the run goes on; follow it with: enqueue status %s --wait): %w", id, err)
		}
	}
}

func progressLine(st catalog.Status) string {
	if st.Restore != nil {
		return restoreProgressLine(st)
	}
	if v := st.Verify; v != nil {
		return fmt.Sprintf("verify %s %s: objects %d, ok %d, mismatch %d, missing %d, not checked %d, pending %d, %s read",
			st.ID, st.State, v.Total, v.OK, v.Mismatch, v.Missing, v.Error, v.Pending, humanBytes(v.Bytes))
	}
	if st.Export != nil {
		return fmt.Sprintf("export %s %s: media %d, exported %d, failed %d, pending %d, %s",
			st.ID, st.State, st.Exports.Total, st.Exports.Exported, st.Exports.Failed, st.Exports.Pending, humanBytes(st.Exports.Bytes))
	}
	line := fmt.Sprintf("run %s %s: messages seen %d, media found %d, archived %d (reused %d), deleted %d, gone %d, failed %d, suspect %d, pending %d, %s",
		st.ID, st.State, st.MessagesSeen, st.MediaFound, st.MediaArchived, st.MediaReused,
		st.MediaDeleted, st.MediaGone, st.MediaFailed, st.MediaSuspect, st.MediaPending, humanBytes(st.BytesArchived))
	if st.WindowsTotal > 0 {
		line += fmt.Sprintf(", days listed %d/%d", st.WindowsDone, st.WindowsTotal)
	}
	if st.State == catalog.RunRunning && st.Waiting != "" {
		line += "; listing " + st.Listing(time.Now())
	}
	return line
}

// printStatus writes a run's status: "name: value" lines, stable for
// scripts to read, ending with how many failures it did not name and the
// command that lists them; or, with --json, one JSON document.
func (a *app) printStatus(ctx context.Context, cat *catalog.Catalog, st catalog.Status) error {
	totals, err := cat.FailureCounts(ctx, st.ID)
	if err != nil {
		return err
	}
	keeps, now := cmp.Or(a.twilioKeeps, retention.Default), time.Now()
	purged, past := statusPurged(st, keeps, now)
	if a.asJSON {
		out := toStatusJSON(st, totals)
		if past {
			out.TwilioPurgedBefore = &purged
		}
		return writeJSON(a.stdout, out)
	}
	printStatusLines(a.stdout, st)
	if past {
		fmt.Fprintf(a.stdout, "twilio purged:   media sent before %s (Twilio keeps %s, TWILIO_RETENTION_DAYS): not served, not archived unless already\n",
			purged.UTC().Format(time.DateOnly), keeps)
	}
	shown := map[string]int{}
	for _, f := range st.Failures {
		shown[f.Kind]++
	}
	shown[catalog.FailureSuspect] = len(st.Suspects)
	more := 0
	for k, n := range totals {
		more += n - shown[k]
	}
	if more > 0 {
		fmt.Fprintf(a.stdout, "more failures:   %d not shown above: enqueue failures %s\n", more, st.ID)
	}
	return nil
}

// verifyFailed names every object a verify run found not matching, on
// stderr, and returns the exit-1 error.
func (a *app) verifyFailed(ctx context.Context, cat *catalog.Catalog, st catalog.Status) error {
	n := 0
	for f, err := range cat.AllRunFailures(ctx, st.ID) {
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stderr, "enqueue: does not match: %s: %s\n", f.SID, oneLine(f.Reason))
		n++
	}
	return &runFailedError{fmt.Sprintf("verify run %s: %d objects do not match the catalog", st.ID, n)}
}

// printStatusLines writes a run's status as "name: value" lines.
func printStatusLines(w io.Writer, st catalog.Status) {
	fmt.Fprintf(w, "run:             %s\n", st.ID)
	switch st.Kind {
	case catalog.KindBackfill:
		fmt.Fprintf(w, "kind:            backfill %s .. %s (UTC, until exclusive)\n", st.Since.Format(time.DateOnly), st.Until.Format(time.DateOnly))
		if st.Source == catalog.SourceConversations {
			fmt.Fprintf(w, "source:          conversations, services %s\n", servicesLine(st.Services))
		}
	case catalog.KindMessage:
		fmt.Fprintf(w, "kind:            message %s\n", st.MessageSID)
	case catalog.KindPolicy:
		fmt.Fprintf(w, "kind:            policy %s, tick %s\n", st.PolicyName, st.Tick.Format(time.RFC3339))
		if !st.Since.IsZero() {
			fmt.Fprintf(w, "window:          %s .. %s\n", st.Since.Format(time.RFC3339), st.Until.Format(time.RFC3339))
		}
	case catalog.KindExport:
		fmt.Fprintf(w, "kind:            export %s .. %s (UTC, until exclusive)\n", st.Since.Format(time.DateOnly), st.Until.Format(time.DateOnly))
	case catalog.KindRetry:
		fmt.Fprintf(w, "kind:            retry of run %s\n", st.RetryOf)
	case catalog.KindVerify:
		what := "all archived media"
		if !st.Since.IsZero() || !st.Until.IsZero() {
			what = fmt.Sprintf("media of messages sent %s .. %s (UTC, until exclusive)", day(st.Since), day(st.Until))
		}
		fmt.Fprintf(w, "kind:            verify %s, sample %g\n", what, st.VerifySample)
		if st.PolicyName != "" {
			fmt.Fprintf(w, "policy:          %s, tick %s\n", st.PolicyName, st.Tick.Format(time.RFC3339))
		}
	default:
		fmt.Fprintf(w, "kind:            %s\n", st.Kind)
	}
	if st.Restore != nil {
		printRestore(w, st)
		return
	}
	if st.Verify != nil {
		fmt.Fprintf(w, "state:           %s\n", st.State)
		if st.Error != "" {
			fmt.Fprintf(w, "error:           %s\n", st.Error)
		}
		printVerify(w, st)
		printElapsed(w, st)
		for _, f := range st.Failures {
			fmt.Fprintf(w, "failed:          %s: %s\n", f.SID, f.Reason)
		}
		return
	}
	if st.Export != nil {
		fmt.Fprintf(w, "state:           %s\n", st.State)
		if st.Error != "" {
			fmt.Fprintf(w, "error:           %s\n", st.Error)
		}
		printExport(w, st)
		printElapsed(w, st)
		for _, f := range st.Failures {
			fmt.Fprintf(w, "failed:          %s: %s\n", f.SID, f.Reason)
		}
		return
	}
	mode := "archive"
	switch {
	case st.DryRun:
		mode = "dry run (nothing archived or deleted)"
	case st.Delete && !st.DeleteBefore.IsZero():
		mode = "archive, then delete from Twilio what was sent before " + st.DeleteBefore.Format(time.RFC3339)
	case st.Delete:
		mode = "archive, then delete from Twilio"
	}
	if st.NoBodies && !st.DryRun {
		mode += "; message records without their body (--no-bodies)"
	}
	fmt.Fprintf(w, "mode:            %s\n", mode)
	fmt.Fprintf(w, "state:           %s\n", st.State)
	if st.Error != "" {
		fmt.Fprintf(w, "error:           %s\n", st.Error)
	}
	if st.WindowsTotal > 0 {
		if st.Source == catalog.SourceConversations {
			fmt.Fprintf(w, "services listed: %d/%d (%d pages of conversations)\n", st.WindowsDone, st.WindowsTotal, st.PagesFetched)
		} else {
			fmt.Fprintf(w, "days listed:     %d/%d (%d pages)\n", st.WindowsDone, st.WindowsTotal, st.PagesFetched)
		}
	}
	if st.State == catalog.RunRunning && st.WindowsTotal > st.WindowsDone {
		fmt.Fprintf(w, "listing:         %s\n", st.Listing(time.Now()))
	}
	fmt.Fprintf(w, "messages seen:   %d\n", st.MessagesSeen)
	fmt.Fprintf(w, "messages gone:   %d\n", st.MessagesGone)
	fmt.Fprintf(w, "media found:     %d\n", st.MediaFound)
	if st.DryRun {
		fmt.Fprintf(w, "media listed:    %d\n", st.MediaListed)
	}
	fmt.Fprintf(w, "media archived:  %d (already archived before: %d)\n", st.MediaArchived, st.MediaReused)
	fmt.Fprintf(w, "media deleted:   %d\n", st.MediaDeleted)
	fmt.Fprintf(w, "media gone:      %d\n", st.MediaGone)
	fmt.Fprintf(w, "media failed:    %d\n", st.MediaFailed)
	fmt.Fprintf(w, "media pending:   %d\n", st.MediaPending)
	if st.MediaHeld > 0 {
		fmt.Fprintf(w, "media held:      %d (archived; not deleted: under legal hold)\n", st.MediaHeld)
	}
	if st.MediaSuspect > 0 {
		fmt.Fprintf(w, "media suspect:   %d (the bytes downloaded were not plausibly the media: kept under suspect/, not archived, not deleted; a later run retries)\n", st.MediaSuspect)
	} else {
		fmt.Fprintf(w, "media suspect:   0\n")
	}
	fmt.Fprintf(w, "bytes archived:  %d (%s)\n", st.BytesArchived, humanBytes(st.BytesArchived))
	printElapsed(w, st)
	for _, f := range st.Failures {
		fmt.Fprintf(w, "failed:          %s: %s\n", f.SID, f.Reason)
	}
	for _, f := range st.Suspects {
		fmt.Fprintf(w, "suspect:         %s: %s\n", f.SID, f.Reason)
	}
	for _, g := range st.GoneMessages {
		fmt.Fprintf(w, "gone:            %s: %s\n", g.SID, g.Reason)
	}
}

func printElapsed(w io.Writer, st catalog.Status) {
	if !st.StartedAt.IsZero() {
		end := st.FinishedAt
		if end.IsZero() {
			end = time.Now()
		}
		fmt.Fprintf(w, "elapsed:         %s\n", end.Sub(st.StartedAt).Round(time.Second))
	}
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// servicesLine names a conversations run's services; "" is the account's
// default one.
func servicesLine(services []string) string {
	names := make([]string, len(services))
	for i, s := range services {
		names[i] = cmp.Or(s, "(the default service)")
	}
	return strings.Join(names, ", ")
}
