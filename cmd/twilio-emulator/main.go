package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mediasync/mediasync/internal/version"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "twilio-emulator:", err)
		os.Exit(2)
	}
}

// options are the program's settings, one flag each.
type options struct {
	cfg     twiliotest.Config
	account twiliotest.AccountOptions
	data    twiliotest.Dataset
	start   string
	end     string
	envFile string
	version bool // --version: print it, serve nothing
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("twilio-emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: twilio-emulator [flags]

Serves a Twilio emulator (Messaging 2010-04-01, Conversations v1, MCS) with one
account and a generated dataset, and prints the environment for mediasync as
shell export lines. Sizes accept B, KB, MB, GB, KiB, MiB, GiB; durations are Go
durations (250ms, 4h). SIGTERM or SIGINT stops it.

Flags:
`)
		fs.PrintDefaults()
	}

	// Listeners.
	fs.StringVar(&o.cfg.APIAddr, "api-addr", "127.0.0.1:0", "`address` the API listens on (port 0: any free port)")
	fs.StringVar(&o.cfg.APIHost, "api-host", "", "host `name` the API advertises in absolute URLs (default: the listen IP)")
	fs.StringVar(&o.cfg.SignedAddr, "signed-addr", "127.0.0.1:0", "`address` signed media URLs are served on")
	fs.StringVar(&o.cfg.SignedHost, "signed-host", "", "host `name` in signed URLs; must differ from -api-host as a name (default localhost)")
	fs.IntVar(&o.cfg.RedirectStatus, "redirect-status", 302, "`status` of the content redirect: 302 or 307")
	fs.IntVar(&o.cfg.RedirectHops, "redirect-hops", 1, "redirects before the bytes: 1 or 2")
	fs.DurationVar(&o.cfg.SignedURLTTL, "signed-url-ttl", 4*time.Hour, "how long a signed URL stays valid")
	maxUpload := byteSize(150 * 1000 * 1000)
	fs.Var(&maxUpload, "max-upload-size", "largest MCS upload")
	fs.IntVar(&o.cfg.RequestLogSize, "request-log", 10000, "requests kept in the request log (-1: none)")
	fs.StringVar(&o.envFile, "env-file", "", "also write the export lines to this `file` once serving (written atomically)")

	// Account.
	fs.Int64Var(&o.cfg.Seed, "seed", 1, "seed of SIDs, credentials, dataset, content bytes and fault draws")
	fs.StringVar(&o.account.SID, "account-sid", "", "Account SID (AC + 32 hex; default generated from -seed)")
	fs.StringVar(&o.account.AuthToken, "auth-token", "", "Auth Token, [A-Za-z0-9] (default generated)")
	fs.StringVar(&o.account.APIKey, "api-key", "", "API key SID (SK + 32 hex; default generated)")
	fs.StringVar(&o.account.APISecret, "api-secret", "", "API key secret, [A-Za-z0-9] (default generated)")
	mediaAuth := fs.Bool("media-auth", true, "require credentials on media content URLs (Twilio's \"HTTP auth on media\")")

	// Dataset.
	fs.StringVar(&o.start, "start", "", "first date_sent, YYYY-MM-DD or RFC 3339 (default: 30 days before -end)")
	fs.StringVar(&o.end, "end", "", "end of the date range, YYYY-MM-DD or RFC 3339 (default: now)")
	fs.IntVar(&o.data.Messages, "messages", 1000, "messages to generate")
	fs.Float64Var(&o.data.NoMediaShare, "no-media-share", 0.2, "share of messages without media")
	fs.IntVar(&o.data.MinMediaPerMessage, "min-media", 1, "fewest media of a message with media")
	fs.IntVar(&o.data.MaxMediaPerMessage, "max-media", 10, "most media of a message (Twilio: 10)")
	minSize, maxSize := byteSize(1024), byteSize(1<<20)
	fs.Var(&minSize, "min-media-size", "smallest generated media")
	fs.Var(&maxSize, "max-media-size", "largest generated MMS media; a message stays within 5 MiB")
	fs.IntVar(&o.data.Customers, "customers", 50, "distinct customer phone numbers")
	fs.IntVar(&o.data.Conversations, "conversations", 0, "conversations to generate in the default service")
	fs.IntVar(&o.data.ConversationMessages, "conversation-messages", 10, "messages per conversation")
	fs.IntVar(&o.data.MaxConversationMedia, "max-conversation-media", 3, "most media of a conversation message")
	large := byteSize(0)
	fs.Var(&large, "large-media-size", "size of the occasional large Conversations media, e.g. 150MB (0: none)")
	fs.Float64Var(&o.data.LargeMediaShare, "large-media-share", 0.02, "share of Conversations media at -large-media-size")

	// Load and faults.
	f := &o.cfg.Faults
	fs.IntVar(&f.MaxInFlight, "max-in-flight", 0, "per-account limit on API requests in flight, else 429/20429 (0: none)")
	fs.Float64Var(&f.RequestsPerSecond, "rps", 0, "per-account API requests per second, else 429/20429 (0: none)")
	fs.DurationVar(&f.RetryAfter, "retry-after", 0, "send Retry-After with 429s (0: no header; Twilio does not promise it)")
	fs.DurationVar(&f.Latency, "latency", 0, "added before every API answer")
	fs.DurationVar(&f.DeleteLatency, "delete-latency", 0, "added, on top of -latency, before every API DELETE is processed")
	fs.Float64Var(&f.ErrorRate, "error-rate", 0, "share of API requests answered 500/503")
	fs.Float64Var(&f.CutRate, "cut-rate", 0, "share of content downloads cut short (connection closed mid-body)")
	fs.Float64Var(&f.ResetRate, "reset-rate", 0, "share of content downloads reset (TCP RST mid-body)")
	fs.Float64Var(&f.VanishRate, "vanish-rate", 0, "share of media whose content answers 404 while listed")
	slow := byteSize(0)
	fs.Var(&slow, "body-bytes-per-sec", "throttle content bodies to this many bytes per second (0: full speed)")

	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *showVersion {
		o.version = true
		return o, nil
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o.cfg.MaxUploadSize = int64(maxUpload)
	o.data.MinMediaSize, o.data.MaxMediaSize = int64(minSize), int64(maxSize)
	o.data.LargeMediaSize = int64(large)
	f.BodyBytesPerSecond = int64(slow)
	o.account.MediaAuthDisabled = !*mediaAuth
	if o.data.NoMediaShare == 0 {
		o.data.NoMediaShare = -1 // the flag's 0 means none; the struct's 0 means "default"
	}
	var err error
	if o.data.End, err = parseDate("end", o.end, time.Time{}); err != nil {
		return nil, err
	}
	if o.data.Start, err = parseDate("start", o.start, time.Time{}); err != nil {
		return nil, err
	}
	return o, nil
}

func parseDate(name, v string, def time.Time) (time.Time, error) {
	if v == "" {
		return def, nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("-%s %q: want YYYY-MM-DD or RFC 3339", name, v)
}

// run starts the emulator and serves until ctx is done.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if o.version {
		version.Print(stdout, "twilio-emulator")
		return nil
	}
	srv, err := twiliotest.NewServer(o.cfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	acct, err := srv.AddAccount(o.account)
	if err != nil {
		return err
	}
	sum, err := srv.Generate(acct.SID, o.data)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "twilio-emulator: API %s, signed URLs %s; generated %d messages with %d media (%d bytes), %d conversations with %d media (%d bytes)\n",
		srv.URL(), srv.SignedURLBase(), sum.Messages, sum.Media, sum.MediaBytes, sum.Conversations, sum.ConversationMedia, sum.ConversationBytes)

	env := exports(srv, acct)
	if o.envFile != "" {
		if err := writeAtomic(o.envFile, env); err != nil {
			return fmt.Errorf("-env-file: %w", err)
		}
	}
	if _, err := io.WriteString(stdout, env); err != nil {
		return err
	}
	<-ctx.Done()
	fmt.Fprintln(stderr, "twilio-emulator: stopping")
	return srv.Close()
}

func exports(srv *twiliotest.Server, acct twiliotest.Account) string {
	var b strings.Builder
	for _, kv := range [][2]string{
		{"TWILIO_API_URL", srv.URL()},
		{"TWILIO_CONVERSATIONS_URL", srv.URL()},
		{"TWILIO_MCS_URL", srv.URL()},
		{"TWILIO_ACCOUNT_SID", acct.SID},
		{"TWILIO_AUTH_TOKEN", acct.AuthToken},
		{"TWILIO_API_KEY", acct.APIKey},
		{"TWILIO_API_SECRET", acct.APISecret},
		{"TWILIO_CONVERSATIONS_SERVICE_SID", acct.ServiceSID},
		{"TWILIO_EMULATOR_ADMIN_URL", srv.URL() + "/_emulator"},
		{"TWILIO_EMULATOR_SIGNED_URL", srv.SignedURLBase()},
	} {
		// Every value is [A-Za-z0-9:/._-]: safe unquoted in a shell.
		fmt.Fprintf(&b, "export %s=%s\n", kv[0], kv[1])
	}
	return b.String()
}

// writeAtomic writes a file so that a reader polling for it never sees it
// half written.
func writeAtomic(path, content string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".twilio-emulator-env-*")
	if err != nil {
		return err
	}
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
