package archive_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/internal/objects"
)

func TestParseURL(t *testing.T) {
	t.Parallel()
	cases := []struct {
		raw  string
		want archive.URLConfig
	}{
		{"s3://media-archive", archive.URLConfig{Scheme: "s3", S3: archive.S3Config{Bucket: "media-archive"}}},
		{"s3://media-archive/", archive.URLConfig{Scheme: "s3", S3: archive.S3Config{Bucket: "media-archive"}}},
		{"s3://media-archive/twilio/mms/", archive.URLConfig{Scheme: "s3", S3: archive.S3Config{Bucket: "media-archive"}, Prefix: "twilio/mms"}},
		{"s3://media-archive?prefix=twilio/", archive.URLConfig{Scheme: "s3", S3: archive.S3Config{Bucket: "media-archive"}, Prefix: "twilio"}},
		{"s3://media.archive.example/p?region=eu-west-1", archive.URLConfig{Scheme: "s3", S3: archive.S3Config{Bucket: "media.archive.example", Region: "eu-west-1"}, Prefix: "p"}},
		{
			"s3://bkt/m?endpoint=http://127.0.0.1:7070&use_path_style=true&checksums=when_required&region=us-east-1",
			archive.URLConfig{Scheme: "s3", Prefix: "m", S3: archive.S3Config{
				Bucket: "bkt", Region: "us-east-1", Endpoint: "http://127.0.0.1:7070", UsePathStyle: true, ChecksumWhenRequired: true,
			}},
		},
		// Plain http: loopback hosts as they are, others only when said.
		{"s3://bkt?endpoint=http://localhost:7070", archive.URLConfig{Scheme: "s3", S3: archive.S3Config{Bucket: "bkt", Endpoint: "http://localhost:7070"}}},
		{"s3://bkt?endpoint=http://[::1]:7070", archive.URLConfig{Scheme: "s3", S3: archive.S3Config{Bucket: "bkt", Endpoint: "http://[::1]:7070"}}},
		{"s3://bkt?endpoint=http://127.3.2.1", archive.URLConfig{Scheme: "s3", S3: archive.S3Config{Bucket: "bkt", Endpoint: "http://127.3.2.1"}}},
		{"s3://bkt?endpoint=http://s3:7070&allow_http=true", archive.URLConfig{Scheme: "s3", S3: archive.S3Config{Bucket: "bkt", Endpoint: "http://s3:7070", AllowHTTP: true}}},
		{"s3://bkt?endpoint=https://s3.example.com", archive.URLConfig{Scheme: "s3", S3: archive.S3Config{Bucket: "bkt", Endpoint: "https://s3.example.com"}}},
		{"s3://bkt?endpoint=https://127.0.0.1:7070&ca_bundle=/etc/mediasync/../ca.pem", archive.URLConfig{Scheme: "s3", S3: archive.S3Config{Bucket: "bkt", Endpoint: "https://127.0.0.1:7070", CABundle: "/etc/ca.pem"}}},
		{"s3://bkt?checksums=when_supported&use_path_style=false", archive.URLConfig{Scheme: "s3", S3: archive.S3Config{Bucket: "bkt"}}},
		{"s3://bkt?sse=AES256", archive.URLConfig{Scheme: "s3", S3: archive.S3Config{Bucket: "bkt", SSE: "AES256"}}},
		{
			"s3://bkt?sse=aws:kms&sse_kms_key_id=arn:aws:kms:eu-west-1:111122223333:key/abcd",
			archive.URLConfig{Scheme: "s3", S3: archive.S3Config{Bucket: "bkt", SSE: "aws:kms", SSEKMSKeyID: "arn:aws:kms:eu-west-1:111122223333:key/abcd"}},
		},
		{"S3://bkt/a%20b", archive.URLConfig{Scheme: "s3", S3: archive.S3Config{Bucket: "bkt"}, Prefix: "a b"}},
		{"file:///var/lib/mediasync", archive.URLConfig{Scheme: "file", Dir: "/var/lib/mediasync"}},
		{"file:///var/lib/mediasync/../archive/", archive.URLConfig{Scheme: "file", Dir: "/var/lib/archive"}},
		{"file://localhost/srv/media?prefix=mms", archive.URLConfig{Scheme: "file", Dir: "/srv/media", Prefix: "mms"}},
	}
	for _, c := range cases {
		got, err := archive.ParseURL(c.raw)
		require.NoError(t, err, c.raw)
		assert.Equal(t, c.want, got, c.raw)
		again, err := archive.ParseURL(got.String())
		require.NoError(t, err, "String() of %q = %q", c.raw, got.String())
		assert.Equal(t, got, again, "round trip through %q", got.String())
	}
}

func TestParseURLErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		raw  string
		want string
	}{
		{"ftp://bucket/x", `archive URL: unknown scheme "ftp" (want s3 or file)`},
		{"", "no scheme"},
		{"/var/lib/mediasync", "no scheme"},
		{"s3:bucket", `scheme "s3" must be followed by //`},
		{"s3://", "s3 URL has no bucket"},
		{"s3:///prefix", "s3 URL has no bucket"},
		{"s3://My_Bucket", `bucket "My_Bucket" is not a valid bucket name`},
		{"s3://bucket:9000", `bucket "bucket:9000" is not a valid bucket name`},
		{"s3://bucket?colour=blue", `unknown query parameter "colour"`},
		{"s3://bucket?region=eu-west-1&region=us-east-1", `query parameter "region" is given 2 times`},
		{"s3://bucket?region=EU_WEST", `region "EU_WEST" is not a region name`},
		{"s3://bucket?use_path_style=yes", `use_path_style "yes" is not true or false`},
		{"s3://bucket?sse=aes256", `sse "aes256" is not AES256 or aws:kms`},
		{"s3://bucket?sse=AES256&sse_kms_key_id=k", "sse_kms_key_id needs sse=aws:kms"},
		{"s3://bucket?checksums=never", `checksums "never" is not when_required or when_supported`},
		{"s3://bucket?ca_bundle=ca.pem", `ca_bundle "ca.pem" is not an absolute path`},
		{"s3://bucket?endpoint=127.0.0.1:7070", "archive URL: endpoint:"},
		{"s3://bucket?endpoint=ftp://host", `"ftp://host" must be an http or https URL`},
		{"s3://bucket?endpoint=http://s3.example.com", `"http://s3.example.com" is plain http to a host that is not loopback; use https, or say allow_http=true`},
		{"s3://bucket?endpoint=http://10.0.0.5:7070&allow_http=false", "is plain http to a host that is not loopback"},
		{"s3://bucket?endpoint=http://localhost.example.com", "is plain http to a host that is not loopback"},
		{"s3://bucket?endpoint=http://s3:7070&allow_http=yes", `allow_http "yes" is not true or false`},
		{"s3://bucket/a?prefix=b", `prefix given twice, as path "a" and as parameter "b"`},
		{"s3://bucket/a/../b", `prefix "a/../b" is not usable in keys`},
		{"s3://bucket/a%0Ab", "is not usable in keys"},
		{"s3://bucket/x#frag", `fragment "frag" is not allowed`},
		{"file://host/dir", `file URL host "host" is not allowed`},
		{"file:relative/dir", `scheme "file" must be followed by //`},
		{"file://", `file URL path "" must be an absolute directory`},
		{"file:///dir?region=x", `unknown query parameter "region" for file`},
		{"file:///dir?prefix=.mediasync", "reserved name .mediasync"},
		{"s3://bucket?x=%zz", "archive URL: query:"},
	}
	for _, c := range cases {
		_, err := archive.ParseURL(c.raw)
		require.Error(t, err, c.raw)
		assert.Contains(t, err.Error(), c.want, c.raw)
	}
}

// Invariant 3: credentials put in the URL are refused and never repeated.
func TestParseURLRefusesCredentials(t *testing.T) {
	t.Parallel()
	const secret = "wJalrXUtnFEMIK7MDENGbPxRfiCY"
	for _, raw := range []string{
		"s3://AKIAEXAMPLE:" + secret + "@bucket/prefix",
		"s3://" + secret + "@bucket",
		"file://user:" + secret + "@/var/lib",
		"s3:AKIA:" + secret + "@bucket",
		"s3://bucket?endpoint=https://AKIA:" + secret + "@s3.example.com",
		"s3://AKIA:" + secret + "@bucket/%zz",
		"s3://AKIA:" + secret + "@bu cket",
		"ftp://AKIA:" + secret + "@host",
		"s3://bucket?endpoint=http:AKIA:" + secret + "@s3.example.com",
		"s3://bucket?endpoint=https://AKIA:" + secret + "@s3.example.com:port",
		"s3://bucket?endpoint=https://AKIA:" + secret + "/x@s3.example.com",
		"s3://AKIA:" + secret + "/x@bucket",
	} {
		_, err := archive.ParseURL(raw)
		require.Error(t, err, raw)
		assert.NotContains(t, err.Error(), secret, raw)
	}
	_, err := archive.ParseURL("s3://AKIAEXAMPLE:" + secret + "@bucket")
	assert.ErrorContains(t, err, "credentials in the URL are not allowed")
	// A URL that does not parse is named with its user information cut.
	_, err = archive.ParseURL("s3://AKIA:" + secret + "@bucket/%zz")
	assert.ErrorContains(t, err, `cannot parse "s3://xxxxx@bucket/%zz": invalid URL escape "%zz"`)
}

func TestOpenStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, prefix, err := archive.OpenStore(t.Context(), "file://"+dir+"?prefix=mms/")
	require.NoError(t, err)
	assert.Equal(t, "mms", prefix)
	assert.Equal(t, objects.Location{Kind: "file", Bucket: dir}, s.Location())

	s, prefix, err = archive.OpenStore(t.Context(), "s3://media-archive/twilio?region=eu-west-1")
	require.NoError(t, err)
	assert.Equal(t, "twilio", prefix)
	assert.Equal(t, objects.Location{Kind: "s3", Bucket: "media-archive"}, s.Location())

	_, _, err = archive.OpenStore(t.Context(), "gs://bucket")
	require.ErrorContains(t, err, `unknown scheme "gs"`)
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"s3://media-archive/twilio/mms?region=eu-west-1",
		"s3://bkt?endpoint=http://127.0.0.1:7070&use_path_style=true&checksums=when_required",
		"s3://bkt?endpoint=https://127.0.0.1:7070&ca_bundle=/tmp/ca.pem",
		"s3://bkt?sse=aws:kms&sse_kms_key_id=arn:aws:kms:eu-west-1:1:key/a",
		"s3://bkt?prefix=%2Fa%2F",
		"file:///var/lib/mediasync?prefix=p",
		"file://localhost/srv",
		"s3://user:pass@bucket",
		"s3:opaque",
		"ftp://x",
		"s3://bkt/a%00b",
		"",
	} {
		f.Add(s)
	}
	const canary = "Zq9SECRETcanary"
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := archive.ParseURL(raw)
		if err == nil {
			if c.Scheme != "s3" && c.Scheme != "file" {
				t.Fatalf("ParseURL(%q) accepted scheme %q", raw, c.Scheme)
			}
			if strings.HasPrefix(c.Prefix, "/") || strings.HasSuffix(c.Prefix, "/") {
				t.Fatalf("ParseURL(%q) prefix %q has slashes at an end", raw, c.Prefix)
			}
			again, err := archive.ParseURL(c.String())
			if err != nil {
				t.Fatalf("ParseURL(%q).String() = %q does not parse: %v", raw, c.String(), err)
			}
			if again != c {
				t.Fatalf("round trip of %q through %q: got %+v, want %+v", raw, c.String(), again, c)
			}
		}
		// Whatever follows, credentials before the host are never echoed.
		for _, scheme := range []string{"s3://", "file://"} {
			if _, err := archive.ParseURL(scheme + "key:" + canary + "@" + raw); err == nil {
				t.Fatalf("ParseURL accepted credentials before %q", raw)
			} else if strings.Contains(err.Error(), canary) {
				t.Fatalf("error for credentials before %q repeats them: %v", raw, err)
			}
		}
	})
}
