package archive_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"time"

	"github.com/mediasync/mediasync/archive"
)

// Archive one media into a directory: spool the download while hashing it,
// store it under its key, and prove the stored copy before anything may be
// deleted from Twilio.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "mediasync-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	store, prefix, err := archive.OpenStore(ctx, "file://"+dir+"?prefix=media")
	if err != nil {
		log.Fatal(err)
	}

	// The download: in mediasync, the body of Twilio's media response.
	download := strings.NewReader("BEGIN:VCARD\r\nFN:Ada Lovelace\r\nEND:VCARD\r\n")
	spool := archive.NewSpool(archive.SpoolConfig{})
	defer spool.Close()
	if _, err := io.Copy(spool, download); err != nil {
		log.Fatal(err)
	}
	body, err := spool.Reader()
	if err != nil {
		log.Fatal(err)
	}

	k := archive.KeyInfo{
		AccountSID:  "AC00000000000000000000000000000001",
		MessageSID:  "MM00000000000000000000000000000002",
		MediaSID:    "ME00000000000000000000000000000003",
		ContentType: "text/vcard; charset=utf-8",
		DateSent:    time.Date(2024, 3, 9, 14, 5, 0, 0, time.UTC),
	}
	in := archive.PutInput{
		Key:         archive.ObjectKey(prefix, k),
		ContentType: k.ContentType,
		Size:        spool.Size(),
		SHA256:      spool.SHA256(),
		Metadata:    archive.MediaMetadata(k, k.DateSent),
	}
	res, err := store.Put(ctx, in, body)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("stored", in.Key, in.Size, "bytes, existed:", res.Existed)

	// A retried job stores nothing twice.
	res, err = store.Put(ctx, in, body)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("retry existed:", res.Existed)

	// Only a proven copy may lead to a delete.
	if err := archive.Verify(ctx, store, in.Key, in.Size, in.SHA256); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("verified sha256 %x…\n", in.SHA256[:4])
	// Output:
	// stored media/AC00000000000000000000000000000001/2024/03/09/MM00000000000000000000000000000002/ME00000000000000000000000000000003.vcf 41 bytes, existed: false
	// retry existed: true
	// verified sha256 669f40af…
}
