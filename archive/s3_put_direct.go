package archive

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyauth "github.com/aws/smithy-go/auth"
	"github.com/aws/smithy-go/encoding/httpbinding"
	smithytime "github.com/aws/smithy-go/time"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/mediasync/mediasync/internal/sleep"
)

// directPut sends a single create-only PutObject signed here with the
// SDK's SigV4 signer, without the SDK's middleware stack: the stack is
// rebuilt for every call (some 40 middlewares, endpoint rules, auth
// resolution) and was 14 % of the worker's CPU and 45 % of its allocated
// objects on small media (issue #14's profile). The request is the one the
// SDK sends for putSingle's input: the same headers (the SHA-256 for S3 to
// check, If-None-Match: *, metadata, encryption, Object Lock), signed the
// same way (UNSIGNED-PAYLOAD over TLS, the body's SHA-256 over plain
// http), retried by the client's own Retryer, and its errors are the
// SDK's types (smithy.APIError with S3's code, the HTTP status), so
// putFailed and the retryer judge them as they judge the SDK's; a server
// clock far from ours is corrected for, as the SDK does.
//
// It is used only where the SDK itself would sign plain SigV4 for the
// bucket's endpoint, as resolved by the client's own endpoint rules;
// anything else (S3 Express, SigV4a, an endpoint the rules refuse) keeps
// the SDK's PutObject.
type directPut struct {
	http    s3.HTTPClient
	creds   aws.CredentialsProvider
	signer  *v4.Signer
	retryer aws.Retryer
	name    string // signing name
	region  string // signing region
	base    string // the bucket's endpoint URL, without a trailing '/'
	https   bool
	skew    atomic.Int64 // the server's clock minus ours, in ns, when off by more than skewThreshold
}

// skewThreshold is the SDK's: a server clock further off than this is
// corrected for when signing (S3 refuses a signature over 15 minutes old).
const skewThreshold = 4 * time.Minute

// clockSkewCodes are the errors a skewed clock causes, retried once the
// skew is known (as the SDK's retry middleware does).
var clockSkewCodes = map[string]bool{
	"RequestTimeTooSkewed": true, "RequestExpired": true, "RequestInTheFuture": true,
	"InvalidSignatureException": true, "SignatureDoesNotMatch": true, "AuthFailure": true,
}

// newDirectPut returns the direct PutObject for bucket on client, or nil
// where the SDK's own PutObject must be used.
func newDirectPut(ctx context.Context, client *s3.Client, bucket string) *directPut {
	o := client.Options()
	if o.HTTPClient == nil || o.Credentials == nil || o.EndpointResolverV2 == nil || o.UseAccelerate {
		return nil
	}
	ep, err := o.EndpointResolverV2.ResolveEndpoint(ctx, s3.EndpointParameters{
		Bucket:         aws.String(bucket),
		Region:         aws.String(o.Region),
		Endpoint:       o.BaseEndpoint,
		ForcePathStyle: aws.Bool(o.UsePathStyle),
		UseFIPS:        aws.Bool(o.EndpointOptions.UseFIPSEndpoint == aws.FIPSEndpointStateEnabled),
		UseDualStack:   aws.Bool(o.EndpointOptions.UseDualStackEndpoint == aws.DualStackEndpointStateEnabled),
	})
	if err != nil || ep.URI.RawQuery != "" || ep.URI.Fragment != "" {
		return nil
	}
	auths, _ := smithyauth.GetAuthOptions(&ep.Properties)
	// The endpoint rules name schemes "sigv4", "sigv4a", "sigv4-s3express".
	if len(auths) == 0 || (auths[0].SchemeID != "sigv4" && auths[0].SchemeID != smithyauth.SchemeIDSigV4) {
		return nil // S3 Express, SigV4a: the SDK's own signing
	}
	name, _ := smithyhttp.GetSigV4SigningName(&auths[0].SignerProperties)
	region, _ := smithyhttp.GetSigV4SigningRegion(&auths[0].SignerProperties)
	if name == "" {
		name = "s3"
	}
	if region == "" {
		region = o.Region
	}
	retryer := o.Retryer
	if retryer == nil {
		retryer = retry.NewStandard()
	}
	u := ep.URI
	return &directPut{
		http:    o.HTTPClient,
		creds:   o.Credentials,
		signer:  v4.NewSigner(func(so *v4.SignerOptions) { so.DisableURIPathEscaping = true }), // as the SDK signs S3
		retryer: retryer,
		name:    name,
		region:  region,
		base:    strings.TrimSuffix(u.String(), "/"),
		https:   u.Scheme == "https",
	}
}

// put sends in as one PutObject with the SHA-256 in x-amz-checksum-sha256,
// retrying what the client's Retryer retries. Each attempt reads its own
// view of body from offset 0 (a section of it, for an io.ReaderAt such as
// the spool's readers), so an attempt the transport is still writing (it
// may, after the answer) never shares an offset with the next one.
func (d *directPut) put(ctx context.Context, in PutInput, contentType string, meta map[string]string, st *S3Store, body io.ReadSeeker) (string, error) {
	checksum := base64.StdEncoding.EncodeToString(in.SHA256[:])
	payloadHash := "UNSIGNED-PAYLOAD" // over TLS, as the SDK signs it; S3 still checks x-amz-checksum-sha256
	if !d.https {
		payloadHash = hex.EncodeToString(in.SHA256[:])
	}
	release := d.retryer.GetInitialToken()
	var err error
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			delay, derr := d.retryer.RetryDelay(attempt-1, err) // the attempt that failed, as the SDK counts
			if derr != nil {
				return "", err
			}
			releaseRetry, terr := d.retryer.GetRetryToken(ctx, err)
			if terr != nil {
				return "", err // the retry quota is spent: the last attempt's error
			}
			release = releaseRetry
			if serr := sleep.For(ctx, delay); serr != nil {
				return "", err
			}
		}
		var version string
		skewed := d.skew.Load()
		version, err = d.attempt(ctx, in, contentType, meta, st, body, checksum, payloadHash)
		_ = release(err)
		if err == nil {
			return version, nil
		}
		retryable := d.retryer.IsErrorRetryable(err) || (clockSkewCodes[apiCode(err)] && d.skew.Load() != skewed)
		if ctx.Err() != nil || !retryable || (d.retryer.MaxAttempts() > 0 && attempt >= d.retryer.MaxAttempts()) {
			return "", err
		}
	}
}

func (d *directPut) attempt(ctx context.Context, in PutInput, contentType string, meta map[string]string, st *S3Store, body io.ReadSeeker, checksum, payloadHash string) (string, error) {
	rc, err := attemptBody(body, in.Size)
	if err != nil {
		return "", fmt.Errorf("rewind body: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, d.base+"/"+httpbinding.EscapePath(in.Key, false), rc)
	if err != nil {
		return "", operationError(err)
	}
	req.ContentLength = in.Size
	h := req.Header
	h["Content-Type"] = []string{contentType}
	h["If-None-Match"] = []string{"*"}
	h["X-Amz-Checksum-Sha256"] = []string{checksum}
	h["X-Amz-Content-Sha256"] = []string{payloadHash}
	for k, v := range meta {
		h[http.CanonicalHeaderKey("X-Amz-Meta-"+k)] = []string{v}
	}
	if st.sse != "" {
		h["X-Amz-Server-Side-Encryption"] = []string{string(st.sse)}
	}
	if st.kmsKeyID != "" {
		h["X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"] = []string{st.kmsKeyID}
	}
	if in.LockMode != "" {
		h["X-Amz-Object-Lock-Mode"] = []string{string(in.LockMode)}
		h["X-Amz-Object-Lock-Retain-Until-Date"] = []string{smithytime.FormatDateTime(in.RetainUntil)}
	}
	if in.LegalHold {
		h["X-Amz-Object-Lock-Legal-Hold"] = []string{"ON"}
	}
	creds, err := d.creds.Retrieve(ctx)
	if err != nil {
		return "", operationError(fmt.Errorf("get identity: %w", err))
	}
	if creds.SessionToken != "" {
		h["X-Amz-Security-Token"] = []string{creds.SessionToken}
	}
	if err := d.signer.SignHTTP(ctx, creds, req, payloadHash, d.name, d.region, time.Now().Add(time.Duration(d.skew.Load())).UTC()); err != nil {
		return "", operationError(fmt.Errorf("sign request: %w", err))
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return "", operationError(&smithyhttp.RequestSendError{Err: err})
	}
	defer resp.Body.Close()
	d.recordSkew(resp)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", operationError(responseError(resp))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // keep the connection for the next request
	// S3 answers with the checksum it computed and checked: it must be ours.
	if got := resp.Header.Get("X-Amz-Checksum-Sha256"); got != "" && got != checksum {
		return "", fmt.Errorf("S3 verified sha256 %s, the upload had %s: %w", got, checksum, ErrChecksumMismatch)
	}
	return resp.Header.Get("X-Amz-Version-Id"), nil
}

// recordSkew keeps how far the server's clock (its Date header) is from
// ours, when that is past skewThreshold, and forgets it when the clocks
// agree again.
func (d *directPut) recordSkew(resp *http.Response) {
	date, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return
	}
	skew := time.Until(date)
	if skew > -skewThreshold && skew < skewThreshold {
		skew = 0
	}
	d.skew.Store(int64(skew))
}

// attemptBody is one attempt's body: bytes held in memory go as a
// bytes.Reader (the transport then writes headers and body in one go,
// without a copy buffer); anything else as its own section of body.
func attemptBody(body io.ReadSeeker, size int64) (io.ReadCloser, error) {
	if size == 0 {
		return http.NoBody, nil
	}
	if m, ok := body.(interface{ inMemory() ([]byte, bool) }); ok {
		if b, ok := m.inMemory(); ok && int64(len(b)) == size {
			return io.NopCloser(bytes.NewReader(b)), nil
		}
	}
	if ra, ok := body.(io.ReaderAt); ok {
		return io.NopCloser(io.NewSectionReader(ra, 0, size)), nil
	}
	if _, err := body.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return io.NopCloser(body), nil
}

// operationError wraps err as the SDK wraps a PutObject's.
func operationError(err error) error {
	return &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject", Err: err}
}

// s3ErrorBody is S3's XML error document.
type s3ErrorBody struct {
	Code      string `xml:"Code"`
	Message   string `xml:"Message"`
	RequestID string `xml:"RequestId"`
}

// responseError reads S3's error answer into the SDK's error types.
func responseError(resp *http.Response) error {
	var e s3ErrorBody
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if len(bytes.TrimSpace(raw)) > 0 {
		_ = xml.Unmarshal(raw, &e)
	}
	if e.Code == "" {
		// No document (some servers answer a precondition with headers
		// only): the status stands for the code, as S3 names it.
		switch resp.StatusCode {
		case http.StatusPreconditionFailed:
			e.Code = "PreconditionFailed"
		case http.StatusNotFound:
			e.Code = "NotFound"
		default:
			e.Code = strings.ReplaceAll(http.StatusText(resp.StatusCode), " ", "")
			if e.Code == "" {
				e.Code = "UnknownError"
			}
		}
	}
	if e.Message == "" {
		e.Message = "HTTP " + strconv.Itoa(resp.StatusCode)
	}
	if e.RequestID == "" {
		e.RequestID = resp.Header.Get("X-Amz-Request-Id")
	}
	return &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: resp},
			Err:      &smithy.GenericAPIError{Code: e.Code, Message: e.Message},
		},
		RequestID: e.RequestID,
	}
}
