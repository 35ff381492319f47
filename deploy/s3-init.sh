#!/bin/sh
# s3-init: creates the bucket S3_BUCKET on the S3 server at S3_ENDPOINT unless
# it exists, then exits 0, so the compose service can run at every
# `docker compose up`. Requests are signed with curl's --aws-sigv4, as with
# any S3 client (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION).
#
#   S3_ENDPOINT=http://s3:7070 S3_BUCKET=mediasync-archive s3-init
set -eu

: "${S3_ENDPOINT:?S3_ENDPOINT is not set (e.g. http://s3:7070)}"
: "${S3_BUCKET:?S3_BUCKET is not set}"
: "${AWS_ACCESS_KEY_ID:?AWS_ACCESS_KEY_ID is not set}"
: "${AWS_SECRET_ACCESS_KEY:?AWS_SECRET_ACCESS_KEY is not set}"
region=${AWS_REGION:-us-east-1}
url="${S3_ENDPOINT%/}/$S3_BUCKET"

# s3 CURL-OPTION...: a signed request to the bucket; prints the HTTP status.
# The secret goes to curl in a config file on stdin, not on its command line.
s3() {
	printf 'user = "%s:%s"\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" |
		curl --config - --silent --show-error --output /dev/null --write-out '%{http_code}' \
			--aws-sigv4 "aws:amz:$region:s3" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
			--retry 5 --retry-connrefused --retry-delay 1 "$@" "$url"
}

status=$(s3 --head)
case $status in
200)
	echo "s3-init: bucket $S3_BUCKET exists at $S3_ENDPOINT"
	exit 0
	;;
404) ;;
*)
	echo "s3-init: HEAD $url answered HTTP $status" >&2
	exit 1
	;;
esac

status=$(s3 --request PUT)
case $status in
200)
	echo "s3-init: created bucket $S3_BUCKET at $S3_ENDPOINT"
	;;
409)
	# BucketAlreadyOwnedByYou if another run created it meanwhile; anything
	# else (a name taken by another account) fails the HEAD.
	if [ "$(s3 --head)" != 200 ]; then
		echo "s3-init: PUT $url answered HTTP 409 and the bucket is not ours" >&2
		exit 1
	fi
	echo "s3-init: bucket $S3_BUCKET exists at $S3_ENDPOINT"
	;;
*)
	echo "s3-init: PUT $url answered HTTP $status" >&2
	exit 1
	;;
esac
