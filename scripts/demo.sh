#!/usr/bin/env bash
# demo.sh: mediasync end to end on one machine, against the Twilio emulator.
#
# Starts a versitygw S3 server, the emulator with 300 generated messages over
# ten days of January 2026, and a worker; archives five of those days with
# --delete and --wait; then checks, with standard tools only, every archived
# file against the catalog's SHA-256 and the emulator's own bytes, and that
# every deleted media was archived first.
#
# Needs: Go, PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres), Redis
# on 127.0.0.1:6379, curl and psql. `make demo` runs it after `make tools`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
demo="$root/.demo"
S3_PORT=${S3_PORT:-17070}
PGURL=${DEMO_ADMIN_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
bucket=mediasync-demo
s3key=demo
s3secret=demo-secret-not-for-production

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

rm -rf "$demo"
mkdir -p "$demo/bin" "$demo/s3/data" "$demo/s3/versions"

say "building worker, enqueue and twilio-emulator"
go build -o "$demo/bin/" ./cmd/worker ./cmd/enqueue ./cmd/twilio-emulator

say "starting an S3 server (versitygw) on 127.0.0.1:$S3_PORT"
versitygw=${VERSITYGW:-$root/.tools/bin/versitygw}
[ -x "$versitygw" ] || { echo "demo: $versitygw missing: run make tools" >&2; exit 1; }
"$versitygw" --port "127.0.0.1:$S3_PORT" --access "$s3key" --secret "$s3secret" --health /healthz -q \
  posix --versioning-dir "$demo/s3/versions" "$demo/s3/data" >"$demo/s3.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$S3_PORT/healthz" >/dev/null && break; sleep 0.1; done
curl -fsS --aws-sigv4 "aws:amz:us-east-1:s3" --user "$s3key:$s3secret" \
  -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -X PUT "http://127.0.0.1:$S3_PORT/$bucket" >/dev/null
echo "bucket $bucket created"

say "starting the Twilio emulator: 300 messages, 2026-01-01 .. 2026-01-11"
"$demo/bin/twilio-emulator" -seed 42 -messages 300 -start 2026-01-01 -end 2026-01-11 \
  -max-media 4 -max-media-size 256KiB -env-file "$demo/twilio.env" >"$demo/emulator.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$demo/twilio.env" ] && break; sleep 0.1; done
# shellcheck disable=SC1091
. "$demo/twilio.env"
# The emulator prints both kinds of credentials; use an API key, as Twilio
# recommends in production (mediasync refuses an ambiguous pair).
unset TWILIO_AUTH_TOKEN
echo "emulator at $TWILIO_API_URL, account $TWILIO_ACCOUNT_SID, API key $TWILIO_API_KEY"

say "preparing Postgres database mediasync_demo"
psql -q "$PGURL" -c 'DROP DATABASE IF EXISTS mediasync_demo WITH (FORCE)' -c 'CREATE DATABASE mediasync_demo'
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/mediasync_demo?sslmode=disable"
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
export MEDIASYNC_NAMESPACE="demo$$"
export ARCHIVE_URL="s3://$bucket/archive?region=us-east-1&endpoint=http://127.0.0.1:$S3_PORT&use_path_style=true"
export AWS_ACCESS_KEY_ID=$s3key AWS_SECRET_ACCESS_KEY=$s3secret AWS_REGION=us-east-1
export WORKER_CONCURRENCY=16 TWILIO_MAX_CONCURRENCY=20 LOG_FORMAT=json

say "starting a worker (log: .demo/worker.log)"
"$demo/bin/worker" >"$demo/worker.log" 2>&1 &
pids+=($!)

say "enqueue backfill --since 2026-01-03 --until 2026-01-08 --delete --wait"
"$demo/bin/enqueue" --actor demo backfill --since 2026-01-03 --until 2026-01-08 --delete --wait | tee "$demo/status.txt"

say "checking every archived object with sha256sum"
rows=$(psql -At "$DATABASE_URL" -F ' ' -c "SELECT sid, sha256, object_key FROM media WHERE state = 'deleted' ORDER BY sid")
checked=0
while read -r sid sha key; do
  [ -n "$sid" ] || continue
  file="$demo/s3/data/$bucket/$key"
  got=$(sha256sum "$file" | cut -d' ' -f1)
  emu=$(curl -fsS "$TWILIO_API_URL/_emulator/media/$sid?sha256=1" | grep -o '"sha256":"[0-9a-f]*"' | cut -d'"' -f4)
  if [ "$got" != "$sha" ] || [ "$got" != "$emu" ]; then
    echo "MISMATCH $sid: file $got, catalog $sha, emulator $emu" >&2
    exit 1
  fi
  checked=$((checked + 1))
done <<<"$rows"
deletes=$(curl -fsS "$TWILIO_API_URL/_emulator/deletes" | grep -o '"media_sid"' | wc -l)
archived=$(grep '^media archived:' "$demo/status.txt" | awk '{print $3}')
echo "files checked: $checked; deleted from the emulator: $deletes; archived by the run: $archived"
if [ "$checked" -eq 0 ] || [ "$checked" -ne "$deletes" ] || [ "$checked" -ne "$archived" ]; then
  echo "demo: counts disagree" >&2
  exit 1
fi
say "demo passed: every deleted media is in S3 byte for byte (archive: $demo/s3/data/$bucket)"
