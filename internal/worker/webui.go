package worker

import (
	"errors"
	"net/http"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/rs/zerolog"

	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/config"
	"github.com/mediasync/mediasync/internal/webui"
)

// uiHandler is the web UI for /ui/ when MEDIASYNC_UI_TOKEN is set, with
// asynqmon, read-only, under /ui/queues/. Without the token it is nil
// (/ui/ answers 404) and the log says so. The returned func closes
// asynqmon's Redis connections.
func uiHandler(cfg config.Config, cat *catalog.Catalog, now func() time.Time, log zerolog.Logger) (http.Handler, func(), error) {
	if cfg.UIToken == "" {
		log.Info().Msg("web UI off: MEDIASYNC_UI_TOKEN is not set, so /ui/ is not served")
		return nil, func() {}, nil
	}
	ropt, err := asynq.ParseRedisURI(cfg.RedisURL)
	if err != nil {
		return nil, nil, errors.New("REDIS_URL: cannot parse for the queue UI")
	}
	queues := asynqmon.New(asynqmon.Options{RootPath: "/ui/queues", RedisConnOpt: ropt, ReadOnly: true})
	h, err := webui.New(webui.Options{
		Reads: cat, Account: cfg.Twilio.AccountSID, Token: cfg.UIToken, Queues: queues, Now: now, Log: log,
		TwilioRetention: cfg.Twilio.Retention,
	})
	if err != nil {
		_ = queues.Close()
		return nil, nil, err
	}
	log.Info().Str("addr", cfg.HTTPAddr).Msg("web UI at /ui/ (basic auth: MEDIASYNC_UI_TOKEN), queues at /ui/queues/")
	return h, func() { _ = queues.Close() }, nil
}
