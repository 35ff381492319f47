// Command twilio-emulator serves the Twilio emulator of package
// github.com/mediasync/mediasync/twilio/twiliotest as a program, for the demo,
// benchmarks and tests that run mediasync as separate processes.
//
// It starts the API and the signed-URL listeners, creates one account
// (credentials from flags, or generated from -seed), generates a dataset,
// and prints shell export lines on stdout (also written to -env-file once
// it is serving):
//
//	export TWILIO_API_URL=http://127.0.0.1:41234
//	export TWILIO_CONVERSATIONS_URL=http://127.0.0.1:41234
//	export TWILIO_MCS_URL=http://127.0.0.1:41234
//	export TWILIO_ACCOUNT_SID=AC…
//	export TWILIO_AUTH_TOKEN=…
//	export TWILIO_API_KEY=SK…
//	export TWILIO_API_SECRET=…
//	export TWILIO_CONVERSATIONS_SERVICE_SID=IS…
//	export TWILIO_EMULATOR_ADMIN_URL=http://127.0.0.1:41234/_emulator
//	export TWILIO_EMULATOR_SIGNED_URL=http://localhost:41235
//
// SIGTERM or SIGINT stops it. Run it with -help for every flag; the admin
// endpoints are listed in the twiliotest package documentation.
package main
