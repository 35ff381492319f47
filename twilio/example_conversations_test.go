package twilio_test

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/mediasync/mediasync/twilio"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// ExampleConversationMessagesService_All pages through a conversation's
// messages, newest first, and downloads each media through MCS, against
// the in-process emulator.
func ExampleConversationMessagesService_All() {
	now := time.Date(2025, 3, 14, 15, 0, 0, 0, time.UTC)
	srv, err := twiliotest.NewServer(twiliotest.Config{Now: func() time.Time { return now }})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	acct, _ := srv.AddAccount(twiliotest.AccountOptions{})
	ch, _ := srv.AddConversation(acct.SID, twiliotest.ConversationOptions{DateCreated: now.Add(-time.Hour)})
	_, _ = srv.AddConversationMessage(acct.SID, ch, twiliotest.ConversationMessageOptions{Author: "ana", Body: "the photo"})
	_, _ = srv.AddConversationMessage(acct.SID, ch, twiliotest.ConversationMessageOptions{Author: "ana",
		Media: []twiliotest.MediaOptions{{ContentType: "image/jpeg", Filename: "car.jpg", Size: 42056}}})

	c, err := twilio.New(acct.SID, twilio.WithAPIKey(acct.APIKey, acct.APISecret),
		twilio.WithConversationsURL(srv.URL()), twilio.WithMCSURL(srv.URL()))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	for cv, err := range c.Conversations.All(ctx, "", twilio.ConversationListParams{StartDate: now.Add(-24 * time.Hour)}) {
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		for m, err := range c.ConversationMessages.All(ctx, cv.ChatServiceSID, cv.SID, twilio.ConversationMessageListParams{Order: twilio.OrderDesc}) {
			if err != nil {
				fmt.Println("error:", err)
				return
			}
			fmt.Printf("message %d by %s: %q, %d media\n", m.Index, m.Author, m.Body, len(m.Media))
			for _, md := range m.Media {
				content, err := c.MCS.Open(ctx, m.ChatServiceSID, md.SID)
				if err != nil {
					fmt.Println("error:", err)
					return
				}
				n, err := io.Copy(io.Discard, content.Body)
				content.Body.Close()
				fmt.Println(" ", md.Filename, md.ContentType, n, "bytes of", md.Size, err, "direct:", content.Direct)
			}
		}
	}
	// Output:
	// message 1 by ana: "", 1 media
	//   car.jpg image/jpeg 42056 bytes of 42056 <nil> direct: true
	// message 0 by ana: "the photo", 0 media
}
