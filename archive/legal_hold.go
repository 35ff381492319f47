package archive

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// LegalHolder is a store that can put objects under an S3 Object Lock legal
// hold: S3Store, on a bucket with Object Lock enabled. A legal hold makes
// the archived copy undeletable (in any retention mode) until it is lifted,
// mirroring a mediasync legal hold on the Twilio side.
type LegalHolder interface {
	// LegalHoldSupported reports whether the bucket has Object Lock
	// enabled; without it, legal holds live in Postgres only.
	LegalHoldSupported(ctx context.Context) (bool, error)
	// SetLegalHold turns the object's legal hold on or off. An empty
	// versionID means the current version.
	SetLegalHold(ctx context.Context, key, versionID string, on bool) error
	// LegalHold reads the object's legal hold.
	LegalHold(ctx context.Context, key, versionID string) (bool, error)
}

var _ LegalHolder = (*S3Store)(nil)

// LegalHoldSupported implements LegalHolder.
func (s *S3Store) LegalHoldSupported(ctx context.Context) (bool, error) {
	out, err := s.client.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: aws.String(s.bucket)})
	if err != nil {
		switch apiCode(err) {
		case "ObjectLockConfigurationNotFoundError", "NoSuchObjectLockConfiguration", "NotImplemented":
			return false, nil
		}
		return false, fmt.Errorf("s3 object lock configuration of %q: %w", s.bucket, err)
	}
	return out.ObjectLockConfiguration != nil && out.ObjectLockConfiguration.ObjectLockEnabled == types.ObjectLockEnabledEnabled, nil
}

// SetLegalHold implements LegalHolder.
func (s *S3Store) SetLegalHold(ctx context.Context, key, versionID string, on bool) error {
	if err := checkKey(key); err != nil {
		return fmt.Errorf("s3 legal hold: %w", err)
	}
	status := types.ObjectLockLegalHoldStatusOff
	if on {
		status = types.ObjectLockLegalHoldStatusOn
	}
	in := &s3.PutObjectLegalHoldInput{
		Bucket:    aws.String(s.bucket),
		Key:       aws.String(key),
		LegalHold: &types.ObjectLockLegalHold{Status: status},
		// S3 requires an integrity checksum on Object Lock requests.
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
	}
	if versionID != "" {
		in.VersionId = aws.String(versionID)
	}
	if _, err := s.client.PutObjectLegalHold(ctx, in); err != nil {
		if isNotFound(err) {
			return fmt.Errorf("s3 legal hold %q: %w", key, ErrNotFound)
		}
		return fmt.Errorf("s3 legal hold %q: %w", key, err)
	}
	return nil
}

// LegalHold implements LegalHolder.
func (s *S3Store) LegalHold(ctx context.Context, key, versionID string) (bool, error) {
	in := &s3.GetObjectLegalHoldInput{Bucket: aws.String(s.bucket), Key: aws.String(key)}
	if versionID != "" {
		in.VersionId = aws.String(versionID)
	}
	out, err := s.client.GetObjectLegalHold(ctx, in)
	if err != nil {
		if apiCode(err) == "NoSuchObjectLockConfiguration" {
			return false, nil
		}
		if isNotFound(err) {
			return false, fmt.Errorf("s3 legal hold %q: %w", key, ErrNotFound)
		}
		return false, fmt.Errorf("s3 legal hold %q: %w", key, err)
	}
	return out.LegalHold != nil && out.LegalHold.Status == types.ObjectLockLegalHoldStatusOn, nil
}
