package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/internal/sleep"
)

// The bare copy is the yardstick: the least any program must do to move
// the same media. It asks the API for each media's content, follows the
// redirect without credentials, and streams the body straight into a PUT on
// the same S3 server, at the same concurrency. No queue, no database, no
// spool, no hashing, no listing (it is handed the list), no checks. The
// checked bare copy (copyChecked) adds only the checks invariant 1 asks
// before any delete.

// mediaRef names one media to copy and the key to copy it to.
type mediaRef struct {
	messageSID, mediaSID, key string
	// serviceSID is a Conversations media's service (its MCS path); ""
	// for a Messaging media.
	serviceSID string
}

// archivedMedia returns what the pipeline archived, for the bare copy to
// copy again.
func (d *deployment) archivedMedia(ctx context.Context) ([]mediaRef, error) {
	conn, err := pgx.Connect(ctx, d.dbURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT m.message_sid, m.sid, m.object_key,
			CASE WHEN m.source = 'conversations' THEN coalesce(g.service_sid, '') ELSE '' END
		FROM media m JOIN messages g ON g.sid = m.message_sid WHERE m.object_key IS NOT NULL ORDER BY m.sid`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (mediaRef, error) {
		var m mediaRef
		err := r.Scan(&m.messageSID, &m.mediaSID, &m.key, &m.serviceSID)
		return m, err
	})
}

// bareResult is what the bare copy measured.
type bareResult struct {
	media   int
	bytes   int64
	elapsed time.Duration
	cpu     cpuUse // of the emulator, the S3 server and this process
}

func (r bareResult) mediaPerSec() float64 { return perSec(float64(r.media), r.elapsed) }
func (r bareResult) mbPerSec() float64    { return perSec(float64(r.bytes)/1e6, r.elapsed) }

// bareCopier copies media from an emulator (or a proxy before it) to a
// bucket.
type bareCopier struct {
	apiURL, account, token string
	s3URL, bucket          string
	api, storage           *http.Client
	signer                 *v4.Signer
	creds                  aws.Credentials
}

// newBareCopier returns a copier that reaches S3 through s3Transport
// (which trusts the lab's certificate: the bare copy speaks TLS to S3 as
// the pipeline does).
func newBareCopier(apiURL, account, token, s3URL, bucket string, concurrency int, s3Transport *http.Transport) *bareCopier {
	transport := func() *http.Transport {
		t := s3Transport.Clone()
		t.MaxIdleConnsPerHost = concurrency
		return t
	}
	return &bareCopier{
		apiURL: apiURL, account: account, token: token, s3URL: s3URL, bucket: bucket,
		api: &http.Client{Transport: transport(), CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		storage: &http.Client{Transport: transport()},
		signer:  v4.NewSigner(),
		creds:   aws.Credentials{AccessKeyID: s3AccessKey, SecretAccessKey: s3SecretKey},
	}
}

// copyAll copies refs with concurrency goroutines, each with copyOne (the
// bare copy's, or the checked one's); parts are the processes whose CPU
// it counts.
func copyAll(ctx context.Context, refs []mediaRef, concurrency int, parts cpuParts,
	copyOne func(context.Context, mediaRef) (int64, error)) (bareResult, error) {
	return doAll(ctx, len(refs), concurrency, parts, func(ctx context.Context, i int) (int64, error) {
		n, err := copyOne(ctx, refs[i])
		if err != nil {
			return 0, fmt.Errorf("bare copy of %s: %w", refs[i].mediaSID, err)
		}
		return n, nil
	})
}

// recordRef names one message record the pipeline archived: its key and
// size.
type recordRef struct {
	key  string
	size int
}

// archivedRecords returns the message records the pipeline archived
// (issue #17), for the bare copy to store as many objects of their sizes.
func (d *deployment) archivedRecords(ctx context.Context) ([]recordRef, error) {
	conn, err := pgx.Connect(ctx, d.dbURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT record_key, record_size FROM messages WHERE record_key IS NOT NULL ORDER BY sid`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (recordRef, error) {
		var m recordRef
		err := r.Scan(&m.key, &m.size)
		return m, err
	})
}

// putRecords is the least any program must do to keep each message's
// record as its own object, as issue #17 has the pipeline do: one PUT of
// its bytes (here bytes of its size; the bare copy was handed the list
// and its records, as it is handed the media list). media is the media
// the run copied, so that the result's rates stay per media.
func (b *bareCopier) putRecords(ctx context.Context, recs []recordRef, media, concurrency int, parts cpuParts) (bareResult, error) {
	largest := 0
	for _, r := range recs {
		largest = max(largest, r.size)
	}
	body := []byte(strings.Repeat("{}", largest/2+1))
	res, err := doAll(ctx, len(recs), concurrency, parts, func(ctx context.Context, i int) (int64, error) {
		if err := b.put(ctx, recs[i].key, bytes.NewReader(body[:recs[i].size]), int64(recs[i].size)); err != nil {
			return 0, fmt.Errorf("bare record %s: %w", recs[i].key, err)
		}
		return int64(recs[i].size), nil
	})
	res.media = media
	return res, err
}

// doAll runs f(0), …, f(n-1) on concurrency goroutines and sums the bytes
// they moved; parts are the processes whose CPU it counts.
func doAll(ctx context.Context, n, concurrency int, parts cpuParts, f func(ctx context.Context, i int) (int64, error)) (bareResult, error) {
	cpu0 := takeCPU(parts)
	var next, moved atomic.Int64
	began := time.Now()
	g, ctx := errgroup.WithContext(ctx)
	for range concurrency {
		g.Go(func() error {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return nil
				}
				k, err := f(ctx, i)
				if err != nil {
					return err
				}
				moved.Add(k)
			}
		})
	}
	err := g.Wait()
	res := bareResult{media: n, bytes: moved.Load(), elapsed: time.Since(began)}
	res.cpu = cpuBetween(cpu0, takeCPU(parts))
	return res, err
}

// copy moves one media: API → redirect → signed URL → PUT.
func (b *bareCopier) copy(ctx context.Context, r mediaRef) (int64, error) {
	resp, err := b.download(ctx, r)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if err := b.put(ctx, r.key, resp.Body, resp.ContentLength); err != nil {
		return 0, err
	}
	return resp.ContentLength, nil
}

// copyChecked is copy with the checks invariant 1 asks of a copy before
// any delete, and nothing more: the SHA-256 and the Sniffer over every
// byte as it goes by (archive's own), the SHA-256 sent as the aws-chunked
// trailer that S3 verifies before it keeps the object, and the Sniffer's
// verdict. It is the least a copy that may later delete must do, the
// yardstick for what the pipeline's large files cost beyond those checks.
func (b *bareCopier) copyChecked(ctx context.Context, r mediaRef) (int64, error) {
	resp, err := b.download(ctx, r)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	h, sniff := archive.NewHashWriter(nil), archive.NewSniffer()
	body := io.TeeReader(resp.Body, io.MultiWriter(h, sniff))
	if err := b.putTrailed(ctx, r.key, body, resp.ContentLength, h); err != nil {
		return 0, err
	}
	if h.Size() != resp.ContentLength {
		return 0, fmt.Errorf("download: %d bytes of %d", h.Size(), resp.ContentLength)
	}
	served := resp.Header.Get("Content-Type")
	if err := sniff.Check(served, served); err != nil {
		return 0, fmt.Errorf("not plausibly %s: %w", served, err)
	}
	return resp.ContentLength, nil
}

// putTrailed stores size bytes of body under key as archive.PutStream
// sends them, without the SDK: aws-chunked, the x-amz-checksum-sha256
// trailer h's SHA-256 once the body is read, which S3 verifies.
func (b *bareCopier) putTrailed(ctx context.Context, key string, body io.Reader, size int64, h *archive.HashWriter) error {
	enc, length := archive.AWSChunked(body, size, func() ([32]byte, error) { return h.SHA256(), nil })
	put, err := http.NewRequestWithContext(ctx, http.MethodPut, b.s3URL+"/"+b.bucket+"/"+key, enc)
	if err != nil {
		return err
	}
	put.ContentLength = length
	put.Header.Set("Content-Encoding", "aws-chunked")
	put.Header.Set("X-Amz-Trailer", archive.TrailerSHA256)
	put.Header.Set("X-Amz-Decoded-Content-Length", strconv.FormatInt(size, 10))
	put.Header.Set("x-amz-content-sha256", archive.StreamingTrailerSig)
	if err := b.signer.SignHTTP(ctx, b.creds, put, archive.StreamingTrailerSig, "s3", s3Region, time.Now()); err != nil {
		return err
	}
	return b.do(put)
}

// put stores size bytes of body under key, unsigned payload, nothing else.
func (b *bareCopier) put(ctx context.Context, key string, body io.Reader, size int64) error {
	put, err := http.NewRequestWithContext(ctx, http.MethodPut, b.s3URL+"/"+b.bucket+"/"+key, body)
	if err != nil {
		return err
	}
	put.ContentLength = size
	put.Header.Set("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
	if err := b.signer.SignHTTP(ctx, b.creds, put, "UNSIGNED-PAYLOAD", "s3", s3Region, time.Now()); err != nil {
		return err
	}
	return b.do(put)
}

// do sends a signed PUT and reads its answer.
func (b *bareCopier) do(put *http.Request) error {
	presp, err := b.storage.Do(put)
	if err != nil {
		return err
	}
	defer presp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(presp.Body, 4096))
	if presp.StatusCode != http.StatusOK {
		return fmt.Errorf("put: %s: %s", presp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// download asks the API for a media's content and opens it where the
// API redirects, without credentials: the response of a 200, its body for
// the caller to read and close.
func (b *bareCopier) download(ctx context.Context, r mediaRef) (*http.Response, error) {
	location, err := b.contentLocation(ctx, r)
	if err != nil {
		return nil, err
	}
	get, err := http.NewRequestWithContext(ctx, http.MethodGet, location, nil)
	if err != nil {
		return nil, err
	}
	resp, err := b.storage.Do(get)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("download: %s", resp.Status)
	}
	return resp, nil
}

// contentLocation asks the API for a media's content and returns where it
// redirects (a Conversations media: its MCS resource's temporary URL). A
// 429 is waited out: the bare copy has no limiter of its own.
func (b *bareCopier) contentLocation(ctx context.Context, r mediaRef) (string, error) {
	if r.serviceSID != "" {
		return b.mcsLocation(ctx, r)
	}
	u := b.apiURL + "/2010-04-01/Accounts/" + b.account + "/Messages/" + r.messageSID + "/Media/" + r.mediaSID
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return "", err
		}
		req.SetBasicAuth(b.account, b.token)
		resp, err := b.api.Do(req)
		if err != nil {
			return "", err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusTooManyRequests:
			if err := sleep.For(ctx, 20*time.Millisecond); err != nil {
				return "", err
			}
		case resp.StatusCode/100 == 3 && resp.Header.Get("Location") != "":
			return resp.Header.Get("Location"), nil
		default:
			return "", fmt.Errorf("content: %s", resp.Status)
		}
	}
}

// mcsLocation fetches a Conversations media's MCS resource and returns its
// links.content_direct_temporary, fetched without credentials.
func (b *bareCopier) mcsLocation(ctx context.Context, r mediaRef) (string, error) {
	u := b.apiURL + "/v1/Services/" + r.serviceSID + "/Media/" + r.mediaSID
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return "", err
		}
		req.SetBasicAuth(b.account, b.token)
		resp, err := b.api.Do(req)
		if err != nil {
			return "", err
		}
		var m struct {
			Links struct {
				Direct string `json:"content_direct_temporary"`
			} `json:"links"`
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&m)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusTooManyRequests:
			if err := sleep.For(ctx, 20*time.Millisecond); err != nil {
				return "", err
			}
		case resp.StatusCode != http.StatusOK:
			return "", fmt.Errorf("MCS media: %s", resp.Status)
		case err != nil:
			return "", fmt.Errorf("MCS media: %w", err)
		case m.Links.Direct == "":
			return "", errors.New("MCS media without links.content_direct_temporary")
		default:
			return m.Links.Direct, nil
		}
	}
}
