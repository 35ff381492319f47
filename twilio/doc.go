/*
Package twilio is a client for the Twilio calls mediasync makes. On
Programmable Messaging (REST API 2010-04-01): list and fetch messages;
list, fetch, download and delete their media. On Conversations v1: list a
service's conversations, list, fetch and delete their messages. On the
Media Content Service (MCS), where Conversations media live: fetch a
Media resource, download and upload its file. It speaks Twilio only; it
knows nothing of S3, Postgres or jobs.

# Authentication

Every request to Twilio's API host carries HTTP Basic credentials: the
Account SID with its Auth Token, or (recommended in production) an API key
SID with its secret. The account SID always names the account in the path.

	c, err := twilio.New(accountSID, twilio.WithAPIKey(keySID, keySecret))

Credentials never print: the Client formats as its account SID and base
URL, option errors never echo a secret, and text a server sends back into an
error has the secret cut out. Point the client at an emulator with
WithBaseURL("http://127.0.0.1:8080"); plain http is refused for public
hosts.

# Paging

Lists are lazy iterators over pages or items. Nothing is fetched until the
sequence is ranged over; each page follows Twilio's next_page_uri exactly as
given, and an error is yielded once, last:

	for m, err := range c.Media.All(ctx, messageSID, twilio.MediaListParams{}) {
		if err != nil {
			return err
		}
		fmt.Println(m.SID, m.ContentType)
	}

A job that handles one page per task stores a cursor instead: ListURI for the
first page, then each page's NextPageURI, and fetches it with Page.

	uri, _ := c.Messages.ListURI(twilio.MessageListParams{DateSentAfter: since, PageSize: 1000})
	page, err := c.Messages.Page(ctx, uri)
	// … enqueue page.Messages, then store page.NextPageURI ("" at the end).

A page URI on another host, of another list, or one that loops back is
refused with ErrInvalidPageURI, before any request for it is made.

A page is decoded as it streams, never read whole: it may hold no more
items than the PageSize its URI asks for (50 when it names none), no item
larger than 64 KiB or keeping more than 4 KiB of fields, so one page costs
a few MiB at most whatever the server sends; a page past a bound is an
error, never a silent truncation.

# Errors

A response that is not a success is an *Error with the HTTP status and
Twilio's code, message and more_info. Branch with the helpers:

	err := c.Media.Delete(ctx, messageSID, mediaSID)
	switch {
	case err == nil, twilio.IsNotFound(err): // deleted, now or before
	case twilio.IsRateLimited(err): // reschedule; not a failure
	case twilio.IsRetryable(err): // 5xx, reset, timeout: try again later
	default:
		return err
	}

IsGone is stricter than IsNotFound: only the API's own 404 / 20404, not a
404 from the signed-URL host a download was redirected to (Error.Storage)
nor one without Twilio's code; a caller that must not give up on what
Twilio still holds fetches the resource again to know.

Errors show the method and the request path, never a query string (filters
hold phone numbers, signed URLs hold signatures) and never a credential.

# Rate limits and retries

Twilio answers 429 with code 20429 when the account has too many requests in
flight; such a request was never processed and is always safe to retry. The
client retries 429, 5xx and connection failures within a RetryPolicy
(default: 4 attempts, jittered exponential backoff from 500ms, at most 1m of
waiting per call), honouring Retry-After when Twilio sends one. When the
policy is spent, or the wait asked for is longer than it allows, a 429
becomes a *RateLimitError whose RetryAfter says when to come back:

	var rl *twilio.RateLimitError
	if errors.As(err, &rl) {
		// Reschedule the task after rl.RetryAfter; it is not a failure.
	}

The limit is per account, so every worker should share a Limiter
(WithLimiter): each API request holds a slot until its body is closed.
WithRetryHook reports every retry decision with its cause and wait, for
logs, metrics, and for telling a shared limiter to hold every worker back
after a 429:

	twilio.WithRetryHook(func(e twilio.RetryEvent) {
		if e.Cause == twilio.CauseRateLimited {
			_ = shared.Backoff(context.Background(), e.Wait)
		}
	})

A call may wait a long time for its slot, its back-off and its retries.
WithGuard lets its caller decide, for each attempt, holding the slot and
immediately before the request is written, whether it may still be sent,
and bound it with a deadline:

	err := c.Media.Delete(ctx, messageSID, mediaSID, twilio.WithGuard(
		func(ctx context.Context) (time.Time, error) {
			return time.Now().Add(20 * time.Second), checkNoHold(ctx)
		}))

# Media content and redirects

Media.Open streams a file. Twilio answers the media URI with a redirect
(302 or 307, sometimes two) to a signed URL on a storage host. The client
follows those redirects itself and sends them no credentials: a presigned
URL rejects a request that also carries Authorization, and Basic
credentials forwarded to a CDN would hand the account's secret to a third
party. Go's http.Client would forward them whenever the host name stays
the same, and a transport that adds auth would add it to every hop.

	content, err := c.Media.Open(ctx, messageSID, mediaSID)
	if err != nil {
		return err
	}
	defer content.Body.Close()
	n, err := io.Copy(dst, content.Body) // io.ErrUnexpectedEOF if cut short

Redirects that downgrade https to http, leave http(s), loop, exceed 5 hops
or lead to a private address are refused with ErrRedirectRefused.

# Conversations

Conversations v1 and MCS live on their own hosts (WithConversationsURL,
WithMCSURL; Twilio's by default) and go through the same do path: the same
credentials, limiter, retry policy and errors. Lists page through the v1
meta object, whose next_page_url is an absolute URL; one on another host
or list is refused with ErrInvalidPageURI, as a next_page_uri is. A
conversation names its service, under which its messages and their
media are reached ("" lists the account's default service):

	for cv, err := range c.Conversations.All(ctx, "", twilio.ConversationListParams{StartDate: since, EndDate: until}) {
		if err != nil {
			return err
		}
		for m, err := range c.ConversationMessages.All(ctx, cv.ChatServiceSID, cv.SID, twilio.ConversationMessageListParams{Order: twilio.OrderDesc}) {
			if err != nil {
				return err
			}
			for _, md := range m.Media {
				content, err := c.MCS.Open(ctx, m.ChatServiceSID, md.SID)
				// … check content.Size against md.Size, copy, close.
			}
		}
	}

Conversations cannot filter messages by date; Index only grows, so a run
can page in descending order and stop at the last index it archived.
ConversationMessages.Delete deletes a message with its media (MCS has no
delete of its own), takes WithGuard, and a message already gone answers
IsGone.

MCS.Open fetches the Media resource and downloads through its
links.content_direct_temporary with no credentials. When that URL has
expired or answers 4xx it fetches the resource again for a fresh one, at
most twice, then falls back to links.content, which carries credentials
to the MCS host only and is followed to its signed URL without them. A
Content-Length that disagrees with the resource's size is refused
(ErrSizeMismatch); content missing while the resource stands is
ErrContentUnavailable, never IsGone. MCS.Upload streams a file as the raw
request body with its Content-Type, Content-Length and Filename:

	m, err := c.MCS.Upload(ctx, serviceSID, twilio.MCSUploadParams{
		ContentType: "image/jpeg", Filename: "car.jpg", Body: f, Size: size,
		GetBody: func() (io.ReadCloser, error) { return os.Open(path) },
	})
*/
package twilio
