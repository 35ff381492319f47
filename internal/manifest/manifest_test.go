package manifest

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/catalog"
)

// Each manifest line names its message's archived record and says whether
// the body was kept in it or dropped (--no-bodies), in both forms (#17).
func TestManifestSaysWhetherBodiesWereKept(t *testing.T) {
	t.Parallel()
	cases := []struct {
		desc string
		it   catalog.ExportItem
		want string
	}{
		{"kept", catalog.ExportItem{RecordKey: "k1", RecordSHA256: "aa"}, "kept"},
		{"dropped", catalog.ExportItem{RecordKey: "k2", RecordSHA256: "bb", RecordNoBody: true}, "dropped"},
		{"no record", catalog.ExportItem{}, ""},
	}
	for _, c := range cases {
		t.Run(c.desc, func(t *testing.T) {
			t.Parallel()
			var jsonl, csvOut, sums bytes.Buffer
			w := NewWriter(&jsonl, &csvOut, &sums)
			c.it.MediaSID, c.it.Path = "ME1", "2026-01-01/MM1/ME1.jpg"
			require.NoError(t, w.Add(c.it))
			w.csv.Flush()
			require.NoError(t, w.csv.Error())

			var l map[string]any
			require.NoError(t, json.Unmarshal(jsonl.Bytes(), &l))
			require.Equal(t, c.want, l["message_record_body"])
			require.Equal(t, c.it.RecordKey, l["message_record_key"])
			require.Equal(t, c.it.RecordSHA256, l["message_record_sha256"])

			rows, err := csv.NewReader(&csvOut).ReadAll()
			require.NoError(t, err)
			require.Len(t, rows, 2)
			row := map[string]string{}
			for i, h := range rows[0] {
				row[h] = rows[1][i]
			}
			require.Equal(t, c.want, row["message_record_body"])
			require.Equal(t, c.it.RecordKey, row["message_record_key"])
			require.Equal(t, c.it.RecordSHA256, row["message_record_sha256"])
		})
	}
}
