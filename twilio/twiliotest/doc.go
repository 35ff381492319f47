// Package twiliotest is a Twilio emulator for tests, demos and benchmarks:
// the parts of Programmable Messaging (REST 2010-04-01), Conversations v1
// and the Media Content Service that mediasync uses, served over real HTTP
// on loopback and held to Twilio's documented behaviour (twilio-facts.md):
// twilio-go v1.31.0 and Twilio's OpenAPI documents check it in this
// package's tests. Where Twilio's behaviour is not documented, the code
// says "inferred" and models the documented part.
//
// # Starting one
//
//	srv := twiliotest.NewTestServer(t, twiliotest.Config{Seed: 7})
//	acct, _ := srv.AddAccount(twiliotest.AccountOptions{})
//	sum, _ := srv.Generate(acct.SID, twiliotest.Dataset{Messages: 500})
//
// NewServer(cfg) (*Server, error) is the same without a test; Close stops
// it. URL() is the API base ("http://127.0.0.1:P1"): Messaging under
// /2010-04-01/Accounts/{AccountSid}/, Conversations and MCS under /v1/.
// SignedURLBase() ("http://localhost:P2") serves the signed media URLs on a
// second listener under a different host NAME: Go's http.Client drops
// Authorization on a redirect only when the host name changes, so a client
// that leaks its credentials to the CDN is caught (Stats().
// SignedWithAuthorization must stay 0).
//
// # Accounts and credentials
//
// AddAccount(AccountOptions) (Account, error) returns the Account SID and
// Auth Token, an API key (SK…) and secret, the default Conversations
// service (IS…) and the messaging service (MG…). Credentials are generated
// from the seed in [A-Za-z0-9] (twilio-go refuses other characters), or
// given. Requests authenticate with HTTP Basic: Account SID + Auth Token, or
// API key + secret. SetMediaAuth(account, enabled) is Twilio's "HTTP auth on
// media" switch (on by default, as Twilio now enforces).
//
// # Data
//
// Generate(account, Dataset) (DatasetSummary, error) adds a deterministic
// dataset: messages spread over [Start, End), 0..10 media each within
// Twilio's 5 MB per message, mixed MIME types with matching filenames, and
// Conversations whose media can be large (LargeMediaSize, e.g. 150 MB).
// Calling it again with a later range adds messages "over time". Content is
// never stored: a media's bytes are a ChaCha8 stream keyed by the seed and
// its SID (prefixed with its type's magic bytes), produced as it is read,
// and SIDs encrypt an arena index, so a million media take about 30 MB.
//
// ConversationMessage(sid) tells whether a conversation message was
// deleted. AddMessage, AddMedia, AddConversation and AddConversationMessage add
// items with given bytes (MediaOptions.Content) or a size to generate.
// Media(sid) (MediaInfo, bool) gives a media's type, filename, size and
// state; Content(sid) (io.ReadCloser, error) its expected bytes (also after
// deletion) and SHA256(sid) their hex SHA-256. Messages(account) and
// AllMedia(account) iterate what the emulator holds (no lock is held while
// the loop body runs, so it may call the API); Deletes(from) is the
// log of media deleted through the API; VanishContent(sid) makes a media's
// content 404 while it stays listed. Now, SetNow and AdvanceClock control
// the clock used for signed URL expiry, upload dates and the delete log.
//
// # The API
//
//	GET    /2010-04-01/Accounts/{AC}/Messages.json           To, From, DateSent, DateSent<, DateSent>, PageSize (1..1000), Page, PageToken
//	GET    /2010-04-01/Accounts/{AC}/Messages/{SM|MM}.json
//	DELETE /2010-04-01/Accounts/{AC}/Messages/{SM|MM}.json   deletes its media too
//	GET    /2010-04-01/Accounts/{AC}/Messages/{MM}/Media.json DateCreated, DateCreated<, DateCreated>, paging
//	GET    /2010-04-01/Accounts/{AC}/Messages/{MM}/Media/{ME}.json (and .xml)
//	DELETE /2010-04-01/Accounts/{AC}/Messages/{MM}/Media/{ME}.json  204, then 404 everywhere
//	GET    /2010-04-01/Accounts/{AC}/Messages/{MM}/Media/{ME}       302 (or 307) to a signed URL
//	GET    /v1/Conversations, /v1/Services/{IS}/Conversations      StartDate, EndDate, State, PageSize (1..100)
//	GET    /v1/Conversations/{CH}/Messages, /v1/Services/{IS}/Conversations/{CH}/Messages  Order (asc|desc, any case)
//	GET    /v1/Conversations/{CH}/Messages/{IM}, /v1/Services/{IS}/Conversations/{CH}/Messages/{IM}
//	DELETE the same                                            204; the message and its media are gone everywhere
//	POST   /v1/Services/{IS}/Media                             raw body (+?Filename=) or multipart "Media" part; 201
//	GET    /v1/Services/{IS}/Media/{ME}                        links.content, links.content_direct_temporary
//	GET    /v1/Services/{IS}/Media/{ME}/Content                302 to a signed URL
//
// Lists are newest first (Conversations: oldest first unless a date filter
// is given; messages of a conversation by Order). Page links keep every
// filter, then PageSize, Page and PageToken; clients must follow them as
// given: a Page above 0 without a PageToken is refused, as Twilio does, and
// tokens name an item, so paging stays exact while items come and go. Errors carry Twilio's body ({"code", "message", "more_info",
// "status"}): 401/20003 with WWW-Authenticate, 404/20404, 400 for a
// malformed SID or parameter, 403 for a GET with a body, 429/20429 over the
// limits. Every API answer has Twilio-Request-Id, Twilio-Concurrent-Requests
// and Twilio-Request-Duration.
//
// Signed URLs look like Twilio's (/AC…/<32 hex>?Expires=…&Signature=…&
// Key-Pair-Id=…), are valid Config.SignedURLTTL (4 hours; an MCS
// content_direct_temporary Config.DirectURLTTL, e.g. 1s), answer 403 when
// expired or forged and 400 ("Only one auth mechanism allowed") to a
// request carrying Authorization. The final answer carries the stored
// Content-Type, Content-Length and Content-Disposition with the filename.
//
// # Load and faults
//
// Faults (Config.Faults, SetFaults, POST /_emulator/faults, and flags of
// cmd/twilio-emulator) sets per-account MaxInFlight and RequestsPerSecond
// (429/20429, optional Retry-After), Latency, DeleteLatency, ErrorRate (500/503),
// CutRate and ResetRate (downloads cut short or reset), VanishRate (content
// 404 while listed) and BodyBytesPerSecond (slow bodies). Stats() (reset by
// ResetStats) counts requests by status and route, in flight now and at
// peak per account, 429s, injected faults and requests that carried
// Authorization to the signed host; Requests() is the bounded request log.
//
// # Running it as a program
//
// cmd/twilio-emulator serves the same on ports of its choosing and prints
// shell export lines (also written to -env-file):
//
//	go run ./cmd/twilio-emulator -messages 2000 -conversations 20 -env-file /tmp/twilio.env &
//	. /tmp/twilio.env    # once the file exists
//
// mediasync reads TWILIO_API_URL (the emulator's base URL: paths carry
// /2010-04-01), TWILIO_ACCOUNT_SID, and TWILIO_AUTH_TOKEN or
// TWILIO_API_KEY + TWILIO_API_SECRET; the program prints those,
// TWILIO_CONVERSATIONS_URL and TWILIO_MCS_URL (the same base URL, for
// other clients of the Conversations and MCS APIs), and
// TWILIO_EMULATOR_ADMIN_URL for the admin endpoints:
//
//	GET  /_emulator/stats                    POST /_emulator/stats/reset
//	GET  /_emulator/requests                 GET|POST /_emulator/faults
//	GET|POST /_emulator/clock                GET  /_emulator/deletes?from=N
//	GET|POST /_emulator/accounts             POST /_emulator/accounts/{AC}/media-auth
//	POST /_emulator/accounts/{AC}/generate   POST /_emulator/accounts/{AC}/messages
//	GET  /_emulator/media/{ME}[?sha256=1]    GET  /_emulator/media/{ME}/content
//	POST /_emulator/media/{ME}/vanish
//
// See admin_api.go for the bodies. Run `go run ./cmd/twilio-emulator -help`
// for every flag.
package twiliotest
