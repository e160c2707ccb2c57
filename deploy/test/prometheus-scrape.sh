#!/usr/bin/env bash
# End-to-end check of pcsync's monitoring with a real Prometheus:
#
#   1. promtool checks and unit-tests the alert rules;
#   2. the local stack (devstack: SQS emulator + Partner Central simulator)
#      starts on loopback, and "worker enqueue" sends jobs that exercise
#      what the dashboard shows: jobs to apply (some carrying a stale
#      EngagementLastModifiedAt, so that they meet a ConflictException and
#      heal it) and one for an engagement that does not exist (a dead
#      letter, class not_found);
#   3. "worker run" applies them while a real Prometheus scrapes it every
#      second (with the alert rules loaded); the worker counts its queue and
#      dead-letter queue every second (-queue-sample-interval 1s);
#   4. the script waits until Prometheus's HTTP API reports every good job
#      applied and the dead letter counted in the dead-letter queue (through
#      the queue label the rules and the dashboard read), then runs every
#      query of every panel of the Grafana dashboard against Prometheus, with
#      the dashboard's variables set as Grafana would, and fails unless each
#      returns data: at least one series with a number (NaN is no data).
#      No critical alert may be pending or firing on this healthy stack.
#      Last, it stops the worker with SIGTERM, which must exit 0.
#
# The worker reads the one queue devstack makes: the dashboard's per-queue
# panels must work with a single queue too ($queue set to All, ".*").
#
# Usage: bash deploy/test/prometheus-scrape.sh
#
# Needs Go, and promtool + prometheus (Debian package "prometheus"), curl and
# jq; when they are missing and the script runs as root, it installs them
# with apt-get. Only loopback addresses are used; the Debian package's own
# prometheus service (if any) is left alone: this run uses its own ports and
# storage directory. Every process it starts is stopped on exit.
#
# Environment: PCSYNC_SCRAPE_TIMEOUT (seconds, default 120) bounds the run
# from the start of the stack to the final check; PCSYNC_SCRAPE_VERBOSE=1
# prints every dashboard query and its result.
set -euo pipefail

cd "$(dirname "$0")/../.."
repo=$(pwd)

jobs_count=12     # applied: jobs_count - 1, dead-lettered: 1
timeout_secs=${PCSYNC_SCRAPE_TIMEOUT:-120}

log() { printf 'prometheus-scrape: %s\n' "$*" >&2; }
fail() {
  printf 'prometheus-scrape: FAIL: %s\n' "$*" >&2
  exit 1
}

# --- tools ---------------------------------------------------------------------

missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v jq >/dev/null 2>&1 || missing+=(jq)
if [ ${#missing[@]} -gt 0 ]; then
  pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  if [ "$(id -u)" -ne 0 ]; then
    fail "missing ${pkgs}; install them (Debian: apt-get install -y ${pkgs}) or run as root"
  fi
  log "installing ${pkgs}"
  apt-get update -qq
  # shellcheck disable=SC2086 # one word per package
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
fi
command -v go >/dev/null 2>&1 || fail "Go is not installed"
log "$(prometheus --version 2>&1 | head -n1)"

# --- 1. rules --------------------------------------------------------------------

log "promtool check rules"
promtool check rules deploy/prometheus/alerts.yaml || fail "alerts.yaml does not pass promtool check rules"
log "promtool test rules"
promtool test rules deploy/prometheus/alerts_test.yaml || fail "alerts_test.yaml: rule unit tests failed"

# --- processes and cleanup -----------------------------------------------------------

tmp=$(mktemp -d)
pids=()
ok=0

cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ "$ok" -ne 1 ]; then
    local f
    for f in devstack.err worker.log enqueue.err prometheus.log; do
      if [ -s "$tmp/$f" ]; then
        printf '\n--- last lines of %s ---\n' "$f" >&2
        tail -n 25 "$tmp/$f" >&2
      fi
    done
  fi
  if [ -n "${PCSYNC_SCRAPE_KEEP:-}" ]; then log "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'log "command failed on line $LINENO"' ERR
trap 'exit 130' INT TERM

# --- 2. build and start the stack ------------------------------------------------------

log "building worker and devstack"
go build -o "$tmp/worker" ./cmd/worker || fail "go build ./cmd/worker"
go build -o "$tmp/devstack" ./cmd/devstack || fail "go build ./cmd/devstack"

deadline=$((SECONDS + timeout_secs))
# wait_for DESCRIPTION COMMAND...: runs COMMAND every 0.2 s until it succeeds or
# the deadline passes.
wait_for() {
  local what=$1
  shift
  until "$@"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      fail "timed out after ${timeout_secs}s waiting for ${what}"
    fi
    sleep 0.2
  done
}
alive() { kill -0 "$1" 2>/dev/null; }

"$tmp/devstack" up -sqs-addr 127.0.0.1:0 -pc-addr 127.0.0.1:0 \
  -engagements 20 -write-rps 50 -write-burst 50 >"$tmp/devstack.env" 2>"$tmp/devstack.err" &
devstack_pid=$!
pids+=("$devstack_pid")
stack_ready() {
  alive "$devstack_pid" || fail "devstack exited early"
  grep -q '^AWS_SECRET_ACCESS_KEY=' "$tmp/devstack.env"
}
wait_for "devstack to print its environment" stack_ready
mapfile -t stack_env < <(grep -E '^[A-Z0-9_]+=' "$tmp/devstack.env")
log "devstack up: $(grep -E '^(PCSYNC_QUEUE_URL|AWS_ENDPOINT_URL_SQS|AWS_ENDPOINT_URL_PARTNERCENTRAL_SELLING)=' "$tmp/devstack.env" | tr '\n' ' ')"
for line in "${stack_env[@]}"; do
  case $line in
    *=http://127.0.0.1:* | *=http://localhost:* | PCSYNC_* | AWS_REGION=* | AWS_ACCESS_KEY_ID=* | AWS_SECRET_ACCESS_KEY=*) ;;
    *) fail "unexpected environment line from devstack: $line" ;;
  esac
done

# --- jobs --------------------------------------------------------------------------------

# Jobs 1 to 11 update engagements devstack made; every third carries an
# EngagementLastModifiedAt long past, so its write meets a ConflictException
# and is healed by a read. Job 12's engagement does not exist: not_found, a
# dead letter.
applied_want=$((jobs_count - 1))
for i in $(seq 1 "$jobs_count"); do
  eng=$i stale=""
  [ "$i" -lt "$jobs_count" ] || eng=99
  [ $((i % 3)) -ne 0 ] || stale='"EngagementLastModifiedAt":"2020-01-01T00:00:00Z",'
  printf '{"Catalog":"Sandbox","EngagementIdentifier":"eng-%014d","ContextIdentifier":"1","Type":"CustomerProject",%s"SourceUpdatedAt":"2026-11-26T06:00:00Z","Payload":{"CustomerProject":{"Customer":{"Industry":"Software and Internet","CompanyName":"Acme %d","WebsiteUrl":"https://acme.example","CountryCode":"US"},"Project":{"Title":"Migration %d","BusinessProblem":"Needs to migrate 40 VMs to AWS","TargetCompletionDate":"2026-12-31"}}}}\n' \
    "$eng" "$stale" "$i" "$i"
done >"$tmp/jobs.jsonl"
env "${stack_env[@]}" "$tmp/worker" enqueue "$tmp/jobs.jsonl" 2>"$tmp/enqueue.err" ||
  fail "worker enqueue: $(tail -n1 "$tmp/enqueue.err")"
log "enqueued: $(tail -n1 "$tmp/enqueue.err")"

# --- 3. Prometheus, then the worker --------------------------------------------------------

# A free loopback port: one nothing answers on.
free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  return 1
}
worker_port=$(free_port) || fail "no free port for the worker"
prom_port=$(free_port) || fail "no free port for Prometheus"
[ "$worker_port" != "$prom_port" ] || fail "picked the same port twice; run again"
worker_addr="127.0.0.1:$worker_port"
prom="http://127.0.0.1:$prom_port"

# Prometheus starts first, so that its scrapes see the worker's counters move.
cat >"$tmp/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $repo/deploy/prometheus/alerts.yaml
scrape_configs:
  - job_name: pcsync
    static_configs:
      - targets: ["$worker_addr"]
        labels:
          namespace: pcsync
EOF
promtool check config "$tmp/prometheus.yml" >/dev/null || fail "generated Prometheus config is invalid"
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/data" \
  --web.listen-address="127.0.0.1:$prom_port" --log.level=warn >"$tmp/prometheus.log" 2>&1 &
prom_pid=$!
pids+=("$prom_pid")
prom_ready() {
  alive "$prom_pid" || fail "prometheus exited early"
  curl -fsS "$prom/-/ready" >/dev/null 2>&1
}
wait_for "Prometheus to be ready on $prom" prom_ready
# query EXPR: the API's JSON answer to an instant query.
query() { curl -fsS --max-time 5 "$prom/api/v1/query" --data-urlencode "query=$1"; }
# Prometheus hands new targets to its scrapers a few seconds after start:
# wait for the first (failing) scrape, so that none of the worker's counters
# is missed.
target_scraped() {
  case $(query 'up{job="pcsync"}' 2>/dev/null) in
    *'"result":[{'*) return 0 ;;
  esac
  return 1
}
wait_for "Prometheus to start scraping $worker_addr" target_scraped
log "prometheus ready on $prom, scraping $worker_addr every second"

# Two writes a second: the jobs take a few seconds, long enough for several
# scrapes to see them being applied.
env "${stack_env[@]}" PCSYNC_WRITE_RPS=2 PCSYNC_LOG_FORMAT=json \
  "$tmp/worker" run -metrics-addr "$worker_addr" -exit-when-idle 0 -queue-sample-interval 1s >"$tmp/worker.log" 2>&1 &
worker_pid=$!
pids+=("$worker_pid")
worker_listening() {
  alive "$worker_pid" || fail "worker exited early"
  grep -qs '"msg":"serving health and metrics"' "$tmp/worker.log"
}
wait_for "the worker's metrics listener" worker_listening
curl -fsS --max-time 5 "http://$worker_addr/healthz" >/dev/null || fail "the worker's /healthz does not answer"
log "worker running, metrics on http://$worker_addr/metrics"

# query_value EXPR: the value of an instant query's first series, or nothing.
query_value() { query "$1" 2>/dev/null | jq -r '.data.result[0].value[1] // empty' 2>/dev/null; }
# waiting_for WHAT EXPR WANT: waits until EXPR's value is WANT.
waiting_for() {
  local what=$1 expr=$2 want=$3 got=""
  seen() {
    alive "$worker_pid" || fail "worker exited while waiting for $what"
    got=$(query_value "$expr")
    [ "$got" = "$want" ]
  }
  wait_for "$what: $expr = $want (last seen: ${got:-none})" seen
  log "Prometheus: $expr = $got"
}

log "waiting for Prometheus to see $applied_want applied jobs and 1 dead letter"
waiting_for "the jobs applied" 'sum(pcsync_jobs_total{queue!="", outcome="applied"})' "$applied_want"
waiting_for "the job dead-lettered" 'sum(pcsync_jobs_total{queue!="", outcome="dead_lettered"})' 1
waiting_for "the dead letter in the dead-letter queue, as SQS counts it" 'max(pcsync_dead_letter_queue_messages)' 1
waiting_for "the queue counted empty" 'max(sum by (instance, queue) (pcsync_queue_messages))' 0
conflicts=$(query_value 'sum(pcsync_conflicts_total)')
[ "${conflicts:-0}" != 0 ] || fail "no ConflictException was met: the stale jobs did not exercise the conflict panels"
log "Prometheus: sum(pcsync_conflicts_total) = $conflicts"

# The counters moved while Prometheus watched: rates have data.
rate_query='sum(rate(pcsync_jobs_total{outcome="applied"}[1m])) > 0'
rate_seen() {
  case $(query "$rate_query" 2>/dev/null) in
    *'"result":[{'*) return 0 ;;
  esac
  return 1
}
wait_for "a rate of applied jobs ($rate_query)" rate_seen
log "Prometheus: $rate_query holds"

# --- 4. what Prometheus holds --------------------------------------------------------------

names=$(curl -fsS --max-time 5 "$prom/api/v1/label/__name__/values" | jq -r '.data[] | select(startswith("pcsync_"))')
log "pcsync series scraped: $(printf '%s\n' "$names" | grep -c .) metric names"
printf '%s\n' "$names" | sed 's/^/  /' >&2

# Every query of every panel of the Grafana dashboard must run and return
# data, with the dashboard's variables set as Grafana would: the selectors
# to all (".*"), the rate interval to 1m (four scrapes at 15 s, as Grafana
# computes it), the range to 5m, and each text box to its default (the
# account's quotas).
dashboard=deploy/grafana/pcsync-dashboard.json
mapfile -t textboxes < <(jq -r '.templating.list[] | select(.type == "textbox") | "\(.name)=\(.query)"' "$dashboard")
substitute() {
  local q=$1 tb
  q=${q//\$__rate_interval/1m}
  q=${q//\$__range/5m}
  q=${q//\$job/pcsync}
  q=${q//\$namespace/.*}
  q=${q//\$instance/.*}
  q=${q//\$queue/.*}
  for tb in "${textboxes[@]}"; do
    q=${q//\$${tb%%=*}/${tb#*=}}
  done
  printf '%s' "$q"
}
total=0
empty=()
while IFS=$'\t' read -r title ref expr; do
  total=$((total + 1))
  q=$(substitute "$expr")
  case $q in *'$'*) fail "panel \"$title\" ($ref): a variable the script does not set: $q" ;; esac
  body=$(curl -sS --max-time 5 "$prom/api/v1/query" --data-urlencode "query=$q") ||
    fail "panel \"$title\" ($ref): query failed: $q"
  [ "$(printf '%s' "$body" | jq -r .status)" = success ] ||
    fail "panel \"$title\" ($ref): Prometheus rejected the query: $q -> $body"
  # Data: a series (or scalar) whose value is a number, NaN not included.
  numbers=$(printf '%s' "$body" | jq '[.data.result | if type == "array" then .[].value[1] else .[1] end | select(. != "NaN")] | length')
  [ -z "${PCSYNC_SCRAPE_VERBOSE:-}" ] || log "$title ($ref): $numbers series with data: $q -> $(printf '%s' "$body" | jq -c .data.result | head -c 400)"
  [ "$numbers" -gt 0 ] || empty+=("$title ($ref): $q -> $(printf '%s' "$body" | jq -c .data.result | head -c 300)")
done < <(jq -r '.panels[] | select(.targets) | .title as $t | .targets[] | [$t, .refId, .expr] | @tsv' "$dashboard")
[ "$total" -gt 0 ] || fail "no queries found in $dashboard"
if [ ${#empty[@]} -gt 0 ]; then
  printf 'prometheus-scrape: no data: %s\n' "${empty[@]}" >&2
  fail "${#empty[@]} of $total dashboard queries returned no data on a healthy stack"
fi
log "dashboard: all $total queries of $(jq '[.panels[] | select(.targets)] | length' "$dashboard") panels returned data"

rules=$(curl -fsS --max-time 5 "$prom/api/v1/rules" | jq '[.data.groups[].rules[] | select(.type == "alerting")] | length')
[ "$rules" -gt 0 ] || fail "Prometheus loaded no alerting rules"
alerts=$(curl -fsS --max-time 5 "$prom/api/v1/alerts")
firing=$(printf '%s' "$alerts" | jq -r '[.data.alerts[] | "\(.labels.alertname) (\(.state))"] | unique | join(", ")')
log "alert rules loaded: $rules; alerts pending or firing now: ${firing:-none}"
critical=$(printf '%s' "$alerts" | jq -r '[.data.alerts[] | select(.labels.severity == "critical") | .labels.alertname] | unique | join(", ")')
[ -z "$critical" ] || fail "critical alerts pending or firing on a healthy stack: $critical"

# --- shutdown ---------------------------------------------------------------------------------

log "stopping the worker with SIGTERM"
kill -TERM "$worker_pid"
stopped() { ! alive "$worker_pid"; }
wait_for "the worker to drain and exit" stopped
status=0
wait "$worker_pid" || status=$?
[ "$status" -eq 0 ] || fail "worker exited with status $status after SIGTERM"
grep -q '"msg":"worker stopped"' "$tmp/worker.log" || fail "worker log has no \"worker stopped\" line"

ok=1
log "OK: $applied_want jobs applied and 1 dead-lettered, scraped; every dashboard query returned data; worker drained and exited 0"
