package catalog_test

import (
	"slices"
	"testing"
	"time"

	"github.com/mediasync/mediasync/catalog"
	"github.com/stretchr/testify/require"
)

// An export holds exactly the archived media its filters select: by day
// sent (or created, when Twilio gave no date_sent), number, direction and
// message, never another account's; in-range media without an archived
// copy are counted, not exported.
func TestExportSelectsByItsFilters(t *testing.T) {
	t.Parallel()
	c := newCatalog(t)
	ctx := t.Context()
	const acct, other = "AC00000000000000000000000000000001", "AC00000000000000000000000000000002"
	day := func(d, h int) time.Time { return time.Date(2026, 3, d, h, 0, 0, 0, time.UTC) }
	type msg struct {
		sid, account, from, to string
		sent, created          *time.Time
		archived               bool
	}
	at := func(t time.Time) *time.Time { return &t }
	msgs := []msg{
		{"MM01", acct, "+1555000001", "+1555000009", at(day(2, 10)), at(day(2, 10)), true},
		{"MM02", acct, "+1555000002", "+1555000009", at(day(3, 23)), at(day(3, 23)), true},
		{"MM03", acct, "+1555000009", "+1555000001", at(day(4, 0)), at(day(4, 0)), true},
		{"MM04", acct, "+1555000001", "+1555000009", nil, at(day(3, 5)), true}, // no date_sent
		{"MM05", acct, "+1555000001", "+1555000009", at(day(3, 6)), at(day(3, 6)), false},
		{"MM06", other, "+1555000001", "+1555000009", at(day(3, 7)), at(day(3, 7)), true},
	}
	for _, m := range msgs {
		_, err := c.Pool().Exec(ctx, `INSERT INTO messages (sid, account_sid, date_sent, date_created, from_number, to_number)
			VALUES ($1, $2, $3, $4, $5, $6)`, m.sid, m.account, m.sent, m.created, m.from, m.to)
		require.NoError(t, err)
		state := "pending"
		if m.archived {
			state = "archived"
		}
		_, err = c.Pool().Exec(ctx, `INSERT INTO media (sid, account_sid, message_sid, state, size_bytes, sha256, store, bucket, object_key, archived_at)
			SELECT $1, $2, $3, $4::text, 1, repeat('a', 64), 's3', 'b', 'k/' || $1, now() WHERE $4::text = 'archived'
			UNION ALL SELECT $1, $2, $3, $4::text, NULL, NULL, NULL, NULL, NULL, NULL WHERE $4::text <> 'archived'`,
			"ME"+m.sid[2:], m.account, m.sid, state)
		require.NoError(t, err)
	}

	for _, tc := range []struct {
		name        string
		spec        catalog.ExportSpec
		want        []string // message SIDs, in manifest order
		notArchived int
	}{
		{"days", catalog.ExportSpec{Since: day(2, 0), Until: day(4, 0)}, []string{"MM01", "MM04", "MM02"}, 1},
		{"no bounds", catalog.ExportSpec{}, []string{"MM01", "MM04", "MM02", "MM03"}, 1},
		{"from", catalog.ExportSpec{From: "+1555000001"}, []string{"MM01", "MM04"}, 1},
		{"to", catalog.ExportSpec{To: "+1555000001"}, []string{"MM03"}, 0},
		{"number either way", catalog.ExportSpec{Number: "+1555000001", Until: day(4, 1)}, []string{"MM01", "MM04", "MM03"}, 1},
		{"messages", catalog.ExportSpec{MessageSIDs: []string{"MM02", "MM05", "MM06"}}, []string{"MM02"}, 1},
		{"nothing", catalog.ExportSpec{Since: day(10, 0)}, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec
			spec.AccountSID, spec.Out, spec.Format, spec.Actor = acct, "file:///tmp/x", catalog.ExportDir, "test"
			e, err := c.CreateExport(ctx, spec)
			require.NoError(t, err)
			n, err := c.SelectExportMedia(ctx, e.ID)
			require.NoError(t, err)
			require.Equal(t, len(tc.want), n)
			var got []string
			for it, err := range c.ExportItems(ctx, e.ID, 0, n, false) {
				require.NoError(t, err)
				got = append(got, it.MessageSID)
			}
			require.True(t, slices.Equal(tc.want, got), "got %v, want %v", got, tc.want)
			e, err = c.GetExport(ctx, e.ID)
			require.NoError(t, err)
			require.Equal(t, tc.notArchived, e.NotArchived, "in range, not archived")
		})
	}
}
