#!/usr/bin/env bash
# The same-pages anchor: nginx serving exactly the project pages airlock serves (the full
# upstream pages, every file listed, as JSON) and the files the client picks, fetched with the
# benchmark harness's client (its fetch.py; docs/benchmark.md), warm and with 8 clients.  The
# harness's nginx anchor serves pages that list only the locked files (16 KB for the whole
# lock against ~29 MB of full pages), so the client's own page parsing is what separates it
# from any proxy that serves real pages; this anchor measures that limit.
# Usage: BENCH_DIR=<the harness's dir> SHARED_BENCH=<the harness's scripts> \
#   bench/same_pages_anchor.sh LOCK [AIRLOCK_SIMPLE_URL]
# (airlock must be running and warm for LOCK; needs nginx and the harness's client venv).
set -euo pipefail
LOCK=$(readlink -f "$1"); IDX=${2:-http://127.0.0.1:8080/pypi/simple/}
B=${BENCH_DIR:?set BENCH_DIR (shared bench/setup.sh)}
HERE=$(dirname "$(readlink -f "$0")"); SHARED=${SHARED_BENCH:?set SHARED_BENCH to the harness scripts (docs/benchmark.md)}
OUT=$B/same-pages; rm -rf "$OUT"; mkdir -p "$OUT/nginx"
$B/tools/bin/python "$HERE/same_pages_mirror.py" "$IDX" "$LOCK" "$OUT/root" "$SHARED"
cat >"$OUT/nginx/nginx.conf" <<CONF
worker_processes 2;
daemon off;
pid $OUT/nginx/nginx.pid;
error_log $OUT/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on; tcp_nopush on;
  types { application/octet-stream whl gz; application/vnd.pypi.simple.v1+json json; }
  server { listen 127.0.0.1:8083; root $OUT/root; location / { index index.json; } }
}
CONF
nginx -p "$OUT/nginx" -c "$OUT/nginx/nginx.conf" & NP=$!
trap 'kill $NP 2>/dev/null' EXIT
sleep 1
F() { $B/tools/bin/python "$SHARED/fetch.py" "$@"; }
F same-pages-nginx-warm http://127.0.0.1:8083/simple/ "$LOCK" >/dev/null  # warm nginx's page cache
for n in nginx airlock; do
  url=http://127.0.0.1:8083/simple/; [ $n = airlock ] && url=$IDX
  F "$n-same-pages-warm" "$url" "$LOCK"
  F "$n-same-pages-warm-x8" "$url" "$LOCK" --clients 8
done
