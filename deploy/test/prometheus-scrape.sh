#!/usr/bin/env bash
# End-to-end check of pcsync's monitoring with a real Prometheus:
#
#   1. promtool checks and unit-tests the alert rules;
#   2. the local stack (devstack: SQS emulator + Partner Central simulator)
#      starts on loopback, a few jobs are enqueued with "worker enqueue";
#   3. "worker run" applies them while a real Prometheus scrapes it every
#      second (with the alert rules loaded);
#   4. the script waits until Prometheus's HTTP API reports
#      sum(pcsync_jobs_total{queue!="", outcome="applied"}) equal to the
#      number of jobs (the queue label is what the rules and the dashboard's
#      per-queue panels read), runs every expression of the Grafana dashboard
#      against Prometheus, and stops the worker with SIGTERM, which must
#      exit 0.
#
# The worker reads the one queue devstack makes: the dashboard's per-queue
# panels must work with a single queue too ($queue set to All, ".*").
#
# Usage: bash deploy/test/prometheus-scrape.sh
#
# Needs Go, and promtool + prometheus (Debian package "prometheus") and curl;
# when they are missing and the script runs as root, it installs them with
# apt-get. Only loopback addresses are used; the Debian package's own
# prometheus service (if any) is left alone: this run uses its own ports and
# storage directory. Every process it starts is stopped on exit.
#
# Environment: PCSYNC_SCRAPE_TIMEOUT (seconds, default 120) bounds the run
# from the start of the stack to the final check.
set -euo pipefail

cd "$(dirname "$0")/../.."
repo=$(pwd)

jobs_count=10
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

for i in $(seq 1 "$jobs_count"); do
  printf '{"Catalog":"Sandbox","EngagementIdentifier":"eng-%014d","ContextIdentifier":"1","Type":"CustomerProject","SourceUpdatedAt":"2026-11-26T06:00:00Z","Payload":{"CustomerProject":{"Customer":{"Industry":"Software and Internet","CompanyName":"Acme %d","WebsiteUrl":"https://acme.example","CountryCode":"US"},"Project":{"Title":"Migration %d","BusinessProblem":"Needs to migrate 40 VMs to AWS","TargetCompletionDate":"2026-12-31"}}}}\n' \
    "$i" "$i" "$i"
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
  "$tmp/worker" run -metrics-addr "$worker_addr" -exit-when-idle 0 >"$tmp/worker.log" 2>&1 &
worker_pid=$!
pids+=("$worker_pid")
worker_listening() {
  alive "$worker_pid" || fail "worker exited early"
  grep -qs '"msg":"serving health and metrics"' "$tmp/worker.log"
}
wait_for "the worker's metrics listener" worker_listening
curl -fsS --max-time 5 "http://$worker_addr/healthz" >/dev/null || fail "the worker's /healthz does not answer"
log "worker running, metrics on http://$worker_addr/metrics"

applied_query='sum(pcsync_jobs_total{queue!="", outcome="applied"})'
applied=""
all_applied() {
  alive "$worker_pid" || fail "worker exited before its jobs were applied"
  local body
  body=$(query "$applied_query" 2>/dev/null) || return 1
  applied=$(printf '%s' "$body" | sed -n 's/.*"value":\[[^,]*,"\([^"]*\)"\].*/\1/p')
  [ "$applied" = "$jobs_count" ]
}
log "waiting for Prometheus to see $jobs_count applied jobs"
wait_for "$applied_query = $jobs_count (last seen: ${applied:-none})" all_applied
log "Prometheus: $applied_query = $applied"
printf '%s\n' "$(query "$applied_query")"

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

names=$(curl -fsS --max-time 5 "$prom/api/v1/label/__name__/values" | grep -o '"pcsync_[a-z_]*"' | tr -d '"' | sort -u)
log "pcsync series scraped: $(printf '%s\n' "$names" | grep -c .) metric names"
printf '%s\n' "$names" | sed 's/^/  /' >&2
for q in 'pcsync_jobs_total' 'pcsync_api_requests_total' 'pcsync_messages_held' 'pcsync_circuit_state' 'pcsync_write_budget_remaining'; do
  printf '%s => %s\n' "$q" "$(query "$q" | grep -o '"result":.*' | head -c 2000)"
done

# Every expression of the Grafana dashboard must parse and run, with the
# dashboard's variables set as Grafana would.
dashboard=deploy/grafana/pcsync-dashboard.json
exprs=$(sed -n 's/^ *"expr": "\(.*\)",\{0,1\}$/\1/p' "$dashboard" | sed 's/\\"/"/g; s/\\\\/\\/g')
total=0
with_data=0
while IFS= read -r expr; do
  [ -n "$expr" ] || continue
  total=$((total + 1))
  q=${expr//\$__rate_interval/1m}
  q=${q//\$__range/5m}
  q=${q//\$job/pcsync}
  q=${q//\$namespace/.*}
  q=${q//\$instance/.*}
  q=${q//\$queue/.*}
  body=$(curl -sS --max-time 5 "$prom/api/v1/query" --data-urlencode "query=$q") ||
    fail "dashboard query failed: $q"
  case $body in
    *'"status":"success"'*) ;;
    *) fail "dashboard expression rejected by Prometheus: $expr -> $body" ;;
  esac
  case $body in
    *'"result":[]'*) [ -z "${PCSYNC_SCRAPE_VERBOSE:-}" ] || log "no data yet: $q" ;;
    *) with_data=$((with_data + 1)) ;;
  esac
done <<<"$exprs"
[ "$total" -gt 0 ] || fail "no expressions found in $dashboard"
log "dashboard: $total expressions run, $with_data with data"

rules=$(curl -fsS --max-time 5 "$prom/api/v1/rules" | { grep -o '"type":"alerting"' || true; } | grep -c . || true)
[ "$rules" -gt 0 ] || fail "Prometheus loaded no alerting rules"
firing=$(curl -fsS --max-time 5 "$prom/api/v1/alerts" | { grep -o '"alertname":"[A-Za-z]*"' || true; } | sort -u | tr '\n' ' ')
log "alert rules loaded: $rules; alerts pending or firing now: ${firing:-none}"

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
log "OK: $jobs_count jobs applied and scraped, dashboard queries run, worker drained and exited 0"
