package archive_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/internal/testenv"
)

// An S3Store whose endpoint is https with a certificate nobody trusts (a
// TLS proxy in front of the test gateway) refuses it: Put, Stat and Open
// fail with a certificate verification error, no request reaches the
// server (no signed request, no media bytes), the object is not written,
// and the error is not mistaken for "not found". With the proxy's
// certificate trusted (RootCAs in S3Config.HTTPClient) the same store
// writes and reads through the same proxy: the refusal is verification,
// not a broken endpoint.
func TestS3StoreVerifiesTLS(t *testing.T) {
	t.Parallel()
	base := s3Config(t)
	gateway, err := url.Parse(base.Endpoint)
	require.NoError(t, err)
	var requests atomic.Int64
	pass := httputil.NewSingleHostReverseProxy(gateway)
	pass.Transport = testenv.S3(t).HTTPClient().Transport
	proxy := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		pass.ServeHTTP(w, r)
	}))
	proxy.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	var conns atomic.Int64
	proxy.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	proxy.StartTLS()
	t.Cleanup(proxy.Close)

	data := []byte("media bytes that must not cross an unverified connection")
	in := archive.PutInput{Key: "tls/object.bin", Size: int64(len(data)), SHA256: sha256.Sum256(data), ContentType: "image/jpeg"}
	ops := []struct {
		name string
		op   func(context.Context, *archive.S3Store) error
	}{
		{"Put", func(ctx context.Context, s *archive.S3Store) error {
			_, err := s.Put(ctx, in, bytes.NewReader(data))
			return err
		}},
		{"Stat", func(ctx context.Context, s *archive.S3Store) error {
			_, err := s.Stat(ctx, in.Key)
			return err
		}},
		{"Open", func(ctx context.Context, s *archive.S3Store) error {
			rc, err := s.Open(ctx, in.Key)
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, rc)
			return errors.Join(err, rc.Close())
		}},
	}

	untrusted := base
	untrusted.Endpoint = proxy.URL
	s := newS3Store(t, untrusted)
	for _, o := range ops {
		err := o.op(t.Context(), s)
		require.Error(t, err, "%s through an untrusted certificate succeeded", o.name)
		var verr *tls.CertificateVerificationError
		require.ErrorAs(t, err, &verr, "%s: want a certificate verification error, got %v", o.name, err)
		var unknown x509.UnknownAuthorityError
		require.ErrorAs(t, err, &unknown, o.name)
		require.NotErrorIs(t, err, archive.ErrNotFound, "%s: a refused connection is not a missing object", o.name)
	}
	require.Zero(t, requests.Load(), "requests got past a refused handshake")
	t.Logf("%d connections refused", conns.Load())
	direct := newS3Store(t, base)
	_, err = direct.Stat(t.Context(), in.Key)
	require.ErrorIs(t, err, archive.ErrNotFound, "the object was written through an untrusted connection")

	// The same proxy, its certificate trusted. A BuildableClient, not an
	// *http.Client: the SDK adds AWS_CA_BUNDLE, when set, to its roots.
	roots := x509.NewCertPool()
	roots.AddCert(proxy.Certificate())
	trusted := untrusted
	trusted.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.TLSClientConfig = &tls.Config{RootCAs: roots}
	})
	ts := newS3Store(t, trusted)
	for _, o := range ops {
		require.NoError(t, o.op(t.Context(), ts), "%s with the certificate trusted", o.name)
	}
	require.Positive(t, requests.Load())
	info, err := direct.Stat(t.Context(), in.Key)
	require.NoError(t, err)
	require.Equal(t, in.SHA256, info.SHA256)
}
