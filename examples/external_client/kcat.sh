#!/bin/sh
# Start a published pipeline (or an endpoint version) from the command line with kcat, and
# follow the run's public events until it ends. Needs only kcat (Debian: apt-get install kcat).
#
#   examples/external_client/kcat.sh BOOTSTRAP published PIPELINE_ID ['{"word": "hi"}']
#   examples/external_client/kcat.sh BOOTSTRAP endpoint NAME[@VERSION] ['{"word": "hi"}']
#
# Exits 0 when the run completes, 1 when it fails or is canceled. HEADRACE_TOPIC_PREFIX sets
# the topic prefix (default "headrace.").
#
# For Apache Kafka and other brokers librdkafka speaks to. The embedded broker of `headrace up`
# (Tansu) answers librdkafka's ApiVersions request in a form it cannot parse, so against the
# embedded stack use the Python client next to this file (run_via_kafka.py) instead.
set -eu

[ $# -ge 3 ] || { sed -n '2,9p' "$0"; exit 2; }
bootstrap=$1 kind=$2 ref=$3 params=${4:-"{}"}
prefix=${HEADRACE_TOPIC_PREFIX:-headrace.}

# Names go into JSON below: accept only the characters ids and endpoint names may contain.
case $ref in *[!A-Za-z0-9._@-]*) echo "bad pipeline reference: $ref" >&2; exit 2 ;; esac
case $kind in
  published) target="\"published_pipeline_id\": \"$ref\"" ;;
  endpoint)
    name=${ref%@*}
    if [ "$name" = "$ref" ]; then target="\"pipeline_endpoint\": \"$name\""
    else target="\"pipeline_endpoint\": \"$name\", \"pipeline_version\": \"${ref#*@}\""; fi ;;
  *) echo "kind must be 'published' or 'endpoint'" >&2; exit 2 ;;
esac

run_id=$(cat /proc/sys/kernel/random/uuid)
event_id=$(cat /proc/sys/kernel/random/uuid)
fifo=$(mktemp -u)
mkfifo "$fifo"
follower=
trap 'rm -f "$fifo"; [ -n "$follower" ] && kill "$follower" 2>/dev/null; true' EXIT

# Follow from a moment before the request (by timestamp), so no event of the run is missed
# however long kcat takes to start.
since=$(($(date +%s) * 1000 - 1000))
kcat -C -q -u -b "$bootstrap" -t "${prefix}events" -o "s@$since" \
  -f '%k\t%h\t%s\n' >"$fifo" &
follower=$!

printf '{"run_id": "%s", "experiment": "from-kcat", %s, "parameters": %s}\n' \
  "$run_id" "$target" "$params" |
  kcat -P -q -b "$bootstrap" -t "${prefix}runs.requested" -k "$run_id" \
    -H "ce_specversion=1.0" -H "ce_id=$event_id" -H "ce_source=/examples/kcat" \
    -H "ce_type=headrace.run.requested.v1" -H "content-type=application/json"
echo "requested run $run_id" >&2

tab=$(printf '\t')
while IFS=$tab read -r key headers value; do
  [ "$key" = "$run_id" ] || continue
  type=$(printf '%s\n' "$headers" | tr ',' '\n' | sed -n 's/^ce_type=//p')
  printf '%s %s\n' "$type" "$value"
  case $type in
    headrace.run.completed.v1) exit 0 ;;
    headrace.run.failed.v1 | headrace.run.canceled.v1) exit 1 ;;
  esac
done <"$fifo"
exit 1
