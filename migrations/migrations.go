// Package migrations holds mediasync's SQL schema as goose migrations,
// embedded so the worker applies them at start with no files beside it.
//
// Add a change as the next numbered file (00002_….sql) with `-- +goose Up`
// and `-- +goose Down` sections; never edit a migration that has shipped.
package migrations

import "embed"

// FS holds every migration, applied in file-name order.
//
//go:embed *.sql
var FS embed.FS
