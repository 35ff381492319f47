package archive

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/mediasync/mediasync/internal/objects"
	"github.com/mediasync/mediasync/internal/redact"
)

// URLConfig is an archive URL (ARCHIVE_URL) taken apart.
//
// Two forms are accepted:
//
//	s3://bucket[/prefix][?param=value&…]
//	file:///absolute/directory[?prefix=…]
//
// The s3 form follows the Go CDK's s3blob URLs. Its parameters:
//
//	region          the bucket's region (default: the AWS environment)
//	endpoint        base URL of an S3-compatible server, e.g. http://127.0.0.1:7070;
//	                plain http only to a loopback host, unless allow_http=true
//	allow_http      true to permit a plain-http endpoint on another host
//	use_path_style  true to address buckets as endpoint/bucket (most S3-compatible servers)
//	sse             AES256 (SSE-S3) or aws:kms (SSE-KMS)
//	sse_kms_key_id  the KMS key for sse=aws:kms
//	checksums       when_required for servers that reject the SDK's default checksums,
//	                or when_supported (the default)
//	ca_bundle       absolute path of a PEM file of certificates to trust for an https
//	                endpoint (a private CA), besides the system's
//	prefix          the key prefix, instead of the path
//
// Credentials never go in the URL: a URL with user information is refused,
// and the S3 store reads them from the AWS environment.
type URLConfig struct {
	// Scheme is LocationS3 or LocationFile.
	Scheme string
	// S3 configures the S3 store (Scheme s3). Credentials and HTTPClient are
	// left nil for the caller to set, or for the SDK's default chain.
	S3 S3Config
	// Dir is the file store's directory (Scheme file).
	Dir string
	// Prefix is the key prefix to pass to ObjectKey, without slashes at
	// either end; empty for none.
	Prefix string
}

// ParseURL parses an archive URL. Errors name the offending part and value,
// except credentials, which are never repeated.
func ParseURL(raw string) (URLConfig, error) {
	// url.Error repeats the whole URL, which may hold credentials.
	u, err := redact.ParseURL(raw)
	if err != nil {
		return URLConfig{}, fmt.Errorf("archive URL: %w", err)
	}
	if u.User != nil {
		return URLConfig{}, errors.New("archive URL: credentials in the URL are not allowed (use the AWS environment, e.g. AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
	}
	if u.Opaque != "" {
		// The opaque part is not echoed: "s3:key:secret@bucket" parses
		// without user information.
		return URLConfig{}, fmt.Errorf("archive URL: scheme %q must be followed by // (e.g. s3://bucket or file:///dir)", u.Scheme)
	}
	if u.Fragment != "" || strings.HasSuffix(raw, "#") {
		return URLConfig{}, fmt.Errorf("archive URL: fragment %q is not allowed", u.Fragment)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return URLConfig{}, fmt.Errorf("archive URL: query: %v", err)
	}
	for name, vals := range q {
		if len(vals) > 1 {
			return URLConfig{}, fmt.Errorf("archive URL: query parameter %q is given %d times", name, len(vals))
		}
	}
	switch u.Scheme {
	case "s3":
		return parseS3URL(u, q)
	case "file":
		return parseFileURL(u, q)
	case "":
		return URLConfig{}, errors.New("archive URL: no scheme (want s3://bucket/prefix or file:///dir)")
	default:
		return URLConfig{}, fmt.Errorf("archive URL: unknown scheme %q (want s3 or file)", u.Scheme)
	}
}

func parseS3URL(u *url.URL, q url.Values) (URLConfig, error) {
	c := URLConfig{Scheme: objects.LocationS3}
	c.S3.Bucket = u.Host
	if u.Host == "" {
		return URLConfig{}, errors.New("archive URL: s3 URL has no bucket (want s3://bucket/prefix)")
	}
	if !validBucketName(u.Host) {
		return URLConfig{}, fmt.Errorf("archive URL: bucket %q is not a valid bucket name (3-63 lower-case letters, digits, '.' and '-')", u.Host)
	}
	prefix, err := urlPrefix(u, q)
	if err != nil {
		return URLConfig{}, err
	}
	c.Prefix = prefix
	for _, name := range sortedKeys(q) {
		v := q.Get(name)
		switch name {
		case "prefix":
		case "region":
			if v == "" || !regionName(v) {
				return URLConfig{}, fmt.Errorf("archive URL: region %q is not a region name", v)
			}
			c.S3.Region = v
		case "endpoint":
			c.S3.Endpoint = v // checked below, once allow_http is known
		case "allow_http":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return URLConfig{}, fmt.Errorf("archive URL: allow_http %q is not true or false", v)
			}
			c.S3.AllowHTTP = b
		case "use_path_style":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return URLConfig{}, fmt.Errorf("archive URL: use_path_style %q is not true or false", v)
			}
			c.S3.UsePathStyle = b
		case "sse":
			if v != SSEAES256 && v != SSEKMS {
				return URLConfig{}, fmt.Errorf("archive URL: sse %q is not %s or %s", v, SSEAES256, SSEKMS)
			}
			c.S3.SSE = v
		case "sse_kms_key_id":
			if v == "" || !printableASCII(v) {
				return URLConfig{}, fmt.Errorf("archive URL: sse_kms_key_id %q is not a KMS key id", v)
			}
			c.S3.SSEKMSKeyID = v
		case "ca_bundle":
			if !filepath.IsAbs(v) || strings.ContainsRune(v, 0) {
				return URLConfig{}, fmt.Errorf("archive URL: ca_bundle %q is not an absolute path", v)
			}
			c.S3.CABundle = filepath.Clean(v)
		case "checksums":
			switch v {
			case "when_required":
				c.S3.ChecksumWhenRequired = true
			case "when_supported":
			default:
				return URLConfig{}, fmt.Errorf("archive URL: checksums %q is not when_required or when_supported", v)
			}
		default:
			return URLConfig{}, fmt.Errorf("archive URL: unknown query parameter %q for s3 (known: allow_http, ca_bundle, checksums, endpoint, prefix, region, sse, sse_kms_key_id, use_path_style)", name)
		}
	}
	if c.S3.SSEKMSKeyID != "" && c.S3.SSE != SSEKMS {
		return URLConfig{}, fmt.Errorf("archive URL: sse_kms_key_id needs sse=%s", SSEKMS)
	}
	if c.S3.Endpoint != "" {
		if err := checkEndpoint(c.S3.Endpoint, c.S3.AllowHTTP); err != nil {
			return URLConfig{}, fmt.Errorf("archive URL: endpoint: %w", err)
		}
	}
	return c, nil
}

func parseFileURL(u *url.URL, q url.Values) (URLConfig, error) {
	if u.Host != "" && u.Host != "localhost" {
		return URLConfig{}, fmt.Errorf("archive URL: file URL host %q is not allowed (want file:///absolute/dir)", u.Host)
	}
	if u.Path == "" || !filepath.IsAbs(u.Path) {
		return URLConfig{}, fmt.Errorf("archive URL: file URL path %q must be an absolute directory (want file:///absolute/dir)", u.Path)
	}
	if strings.ContainsRune(u.Path, 0) {
		return URLConfig{}, errors.New("archive URL: file URL path contains a NUL byte")
	}
	for name := range q {
		if name != "prefix" {
			return URLConfig{}, fmt.Errorf("archive URL: unknown query parameter %q for file (known: prefix)", name)
		}
	}
	prefix := strings.Trim(q.Get("prefix"), "/")
	if err := checkPrefix(prefix); err != nil {
		return URLConfig{}, err
	}
	return URLConfig{Scheme: objects.LocationFile, Dir: filepath.Clean(u.Path), Prefix: prefix}, nil
}

// urlPrefix takes the key prefix from the path or the prefix parameter (not
// both).
func urlPrefix(u *url.URL, q url.Values) (string, error) {
	path := strings.Trim(u.Path, "/")
	param := strings.Trim(q.Get("prefix"), "/")
	if path != "" && param != "" {
		return "", fmt.Errorf("archive URL: prefix given twice, as path %q and as parameter %q", path, param)
	}
	prefix := path + param
	if err := checkPrefix(prefix); err != nil {
		return "", err
	}
	return prefix, nil
}

// checkPrefix makes sure keys built on prefix pass the stores' key rules.
func checkPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if len(prefix) > 512 {
		return fmt.Errorf("archive URL: prefix is %d bytes, more than 512", len(prefix))
	}
	if err := checkKey(prefix); err != nil {
		return fmt.Errorf("archive URL: prefix %q is not usable in keys: %w", prefix, err)
	}
	if first, _, _ := strings.Cut(prefix, "/"); first == fileStoreDir {
		return fmt.Errorf("archive URL: prefix %q uses the reserved name %s", prefix, fileStoreDir)
	}
	return nil
}

func regionName(r string) bool {
	for i := 0; i < len(r); i++ {
		c := r[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return len(r) <= 64
}

func sortedKeys(q url.Values) []string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// String returns the URL in canonical form: ParseURL(c.String()) gives c
// back. It holds no secrets (URLConfig never does), so it is safe to log.
func (c URLConfig) String() string {
	switch c.Scheme {
	case objects.LocationFile:
		u := url.URL{Scheme: "file", Path: c.Dir}
		if c.Prefix != "" {
			u.RawQuery = url.Values{"prefix": {c.Prefix}}.Encode()
		}
		return u.String()
	case objects.LocationS3:
		u := url.URL{Scheme: "s3", Host: c.S3.Bucket}
		if c.Prefix != "" {
			u.Path = "/" + c.Prefix
		}
		q := url.Values{}
		if c.S3.Region != "" {
			q.Set("region", c.S3.Region)
		}
		if c.S3.Endpoint != "" {
			q.Set("endpoint", c.S3.Endpoint)
		}
		if c.S3.UsePathStyle {
			q.Set("use_path_style", "true")
		}
		if c.S3.AllowHTTP {
			q.Set("allow_http", "true")
		}
		if c.S3.SSE != "" {
			q.Set("sse", c.S3.SSE)
		}
		if c.S3.SSEKMSKeyID != "" {
			q.Set("sse_kms_key_id", c.S3.SSEKMSKeyID)
		}
		if c.S3.ChecksumWhenRequired {
			q.Set("checksums", "when_required")
		}
		if c.S3.CABundle != "" {
			q.Set("ca_bundle", c.S3.CABundle)
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	return ""
}

// OpenStore opens the store an archive URL names and returns it with the
// key prefix to pass to ObjectKey. The S3 store takes its credentials from
// the AWS environment; to supply them otherwise, use ParseURL, set
// URLConfig.S3.Credentials and call NewS3Store.
func OpenStore(ctx context.Context, raw string) (Store, string, error) {
	c, err := ParseURL(raw)
	if err != nil {
		return nil, "", err
	}
	switch c.Scheme {
	case objects.LocationS3:
		s, err := NewS3Store(ctx, c.S3)
		if err != nil {
			return nil, "", err
		}
		return s, c.Prefix, nil
	default:
		s, err := NewFileStore(c.Dir)
		if err != nil {
			return nil, "", err
		}
		return s, c.Prefix, nil
	}
}
