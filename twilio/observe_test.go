package twilio

import (
	"io"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/twilio/twiliotest"
)

type observed struct {
	mu  sync.Mutex
	got map[[2]any]int // {api, status} → requests
	n   int
}

func (o *observed) record(api string, status int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got[[2]any{api, status}]++
	o.n++
}

// Every request the client sends reaches the observer, each redirect hop
// and each error answer included, with its kind and status: what the
// emulator saw is what was counted.
func TestRequestObserverSeesEveryRequest(t *testing.T) {
	obs := &observed{got: map[[2]any]int{}}
	b := setupEmu(t, twiliotest.Config{}, WithRequestObserver(obs.record))
	msg, err := b.srv.AddMessage(b.acct.SID, twiliotest.MessageOptions{DateSent: emuNow.AddDate(0, 0, -1),
		Media: []twiliotest.MediaOptions{{Size: 2048}, {Size: 1024}}})
	require.NoError(t, err)
	ctx := t.Context()

	for _, err := range b.client.Messages.All(ctx, MessageListParams{}) {
		require.NoError(t, err)
	}
	var media []string
	for m, err := range b.client.Media.All(ctx, msg.SID, MediaListParams{}) {
		require.NoError(t, err)
		media = append(media, m.SID)
	}
	require.Len(t, media, 2)
	c, err := b.client.Media.Open(ctx, msg.SID, media[0])
	require.NoError(t, err)
	_, err = io.Copy(io.Discard, c.Body)
	require.NoError(t, err)
	c.Body.Close()
	_, err = b.client.Messages.Get(ctx, msg.SID)
	require.NoError(t, err)
	require.NoError(t, b.client.Media.Delete(ctx, msg.SID, media[1]))
	_, err = b.client.Media.Get(ctx, msg.SID, media[1]) // deleted: 404
	require.True(t, IsGone(err), "%v", err)

	assert.Equal(t, 1, obs.got[[2]any{APIList, 200}], "one page of messages")
	assert.Equal(t, 1, obs.got[[2]any{APIMedia, 200}], "one page of media")
	assert.Equal(t, 1, obs.got[[2]any{APIMedia, 404}], "the deleted media's resource")
	assert.Equal(t, 1, obs.got[[2]any{APIMessage, 200}], "one message")
	assert.Equal(t, 1, obs.got[[2]any{APIDelete, 204}], "one DELETE")
	assert.Equal(t, 1, obs.got[[2]any{APIContent, 302}], "the API's content URL redirects")
	assert.Equal(t, 1, obs.got[[2]any{APIContent, 200}], "the signed URL's bytes")

	statuses := map[int]int{}
	for _, r := range b.srv.Requests() {
		statuses[r.Status]++
	}
	counted := map[int]int{}
	for k, n := range obs.got {
		counted[k[1].(int)] += n
	}
	assert.Equal(t, statuses, counted, "the observer counted each request the emulator answered, by status")
	assert.Equal(t, len(b.srv.Requests()), obs.n)
}
