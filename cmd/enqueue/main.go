// Command enqueue asks mediasync's workers to do something and shows how it
// goes: archive a date range (backfill), archive one message, or follow a
// run (status). It talks to Postgres and Redis only; the workers talk to
// Twilio and the archive.
//
// Exit codes: 0 done (with --wait: the run finished and nothing failed);
// 1 the run finished with failures, or a service could not be reached;
// 2 bad input, nothing enqueued.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/version"
	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// usageError is bad input: exit 2, and nothing was enqueued.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// invalid turns what the catalog refuses as bad input (an
// *catalog.InvalidError, with each field called by name, or a policy of
// another account) into a usage error; other errors pass unchanged.
func invalid(err error, name func(field string) string) error {
	var ie *catalog.InvalidError
	var pe *catalog.PolicyAccountError
	switch {
	case errors.As(err, &ie):
		return &usageError{ie.Message(name)}
	case errors.As(err, &pe):
		return &usageError{pe.Error()}
	}
	return err
}

// flagName names a field by its flag: "since" is --since.
func flagName(field string) string { return "--" + field }

// runFailedError is a run that finished with failed media: exit 1.
type runFailedError struct{ msg string }

func (e *runFailedError) Error() string { return e.msg }

// Main runs the CLI and returns its exit code; tests call it directly.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	app := &app{stdout: stdout, stderr: stderr, getenv: getenv}
	root := &cobra.Command{
		Use:           "enqueue",
		Short:         "Queue mediasync work and follow it",
		SilenceUsage:  true,
		SilenceErrors: true,
		Long: `enqueue queues mediasync runs for the workers and follows them.

Configuration comes from the environment: TWILIO_ACCOUNT_SID, DATABASE_URL,
REDIS_URL, MEDIASYNC_NAMESPACE and TWILIO_RETENTION_DAYS, the account's
retention window (see README.md).`,
	}
	root.Version = version.String()
	root.SetVersionTemplate(version.Line("enqueue") + "\n") // as the other programs print it
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs(args)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err.Error()} })
	root.PersistentFlags().StringVar(&app.actor, "actor", "", "who asks, for the record (default: the OS user)")
	root.AddCommand(app.backfillCmd(), app.messageCmd(), app.statusCmd(), app.policyCmd(), app.holdCmd(), app.auditCmd(), app.exportCmd(), app.restoreCmd(), app.migrateCmd(),
		app.runsCmd(), app.failuresCmd(), app.cancelCmd(), app.retryCmd(), app.verifyCmd())

	err := root.ExecuteContext(ctx)
	var ue *usageError
	var rf *runFailedError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue) || isCobraUsage(err):
		fmt.Fprintf(stderr, "enqueue: %s\n", oneLine(err.Error()))
		return 2
	case errors.As(err, &rf):
		fmt.Fprintf(stderr, "enqueue: %s\n", oneLine(err.Error()))
		return 1
	default:
		fmt.Fprintf(stderr, "enqueue: %s\n", oneLine(err.Error()))
		return 1
	}
}

// oneLine joins the lines of an error message with spaces: a refusal is
// one line on stderr, even when cobra adds "Did you mean this?" or a flag
// name carries a newline.
func oneLine(msg string) string {
	var parts []string
	for _, l := range strings.FieldsFunc(msg, func(r rune) bool { return r == '\n' || r == '\r' }) {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, " ")
}

// isCobraUsage recognises cobra's own argument errors (unknown command,
// wrong number of arguments), which it returns as plain errors.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires at least", "requires exactly", "invalid argument", "required flag"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}
