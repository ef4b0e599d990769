#!/bin/bash
# The web UI in a real browser. `make demo`'s sandbox (deploy/demo.sh: moatd --web and its
# forward to the host), the page opened from the host in headless Chromium (Debian's, over
# its DevTools protocol: tests/e2e/web_check.py) and checked from the DOM: every service of
# the demo is a node; the outsider's denied attempt on api is a denied edge within 2 s of its
# first packet, and no node moves for it; clicking the edge shows the explanation naming the
# isolating policy; a node shows its endpoints; the flows table filters by verdict. Over
# HTTP: the security headers, the Host check, no file outside --web-root, no body, no method
# but GET (and POST for the session). Then moatd again with --web-token-file: the API refuses
# without the token (bearer or cookie, wrong ones too) while the page asks for it; given in
# the page, the map is live on an HttpOnly cookie.
#
#   host (root netns)                            netns moat-web-XXXXXX (the demo's sandbox)
#   +------------------------------------+       +---------------------------------------+
#   | chromium --headless                |       | moatd --web 127.0.0.1:9641             |
#   |   <- DevTools -- web_check.py      |       |   ^                                    |
#   |   -- http://127.0.0.1:$PORT --> socat --nsenter--> socat --+                      |
#   | curl (headers, token, traversal)   |       | dockerd: web -> api -> db              |
#   +------------------------------------+       |          outsider -X-> api, db, web   |
#                                                 +---------------------------------------+
#
# The screenshots land in build/test-logs/ (web-demo.png, web-token.png);
# MOAT_WEB_SCREENSHOT=PATH also copies the demo's there (the README's is made so).
set -eu
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root" >&2; exit 77; }
[ -x "$E2E_BUILD/moatd" ] && [ -x "$E2E_BUILD/moat" ] || e2e_fail "build first"
PY=/usr/bin/python3
CHECK=$E2E_ROOT/tests/e2e/web_check.py
LOGS=$E2E_ROOT/build/test-logs
mkdir -p "$LOGS"

T=$(mktemp -d /tmp/moat-web.XXXXXX)
export MOAT_DEMO_DIR=$T/demo MOAT_DEMO_NS=moat-web-${T##*.}
# a port of the host's loopback nobody uses now, for the demo's forward
MOAT_DEMO_WEB_PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export MOAT_DEMO_WEB_PORT
URL=http://127.0.0.1:$MOAT_DEMO_WEB_PORT
cleanup() {
	local rc=$? pid
	set +e
	# a moatd built with make SAN=1 (MOAT_BUILD=build-san) reports when it stops: stop it here
	pid=$(cat "$MOAT_DEMO_DIR/moatd.pid" 2>/dev/null) && kill -TERM "$pid" 2>/dev/null &&
		e2e_wait_gone "$pid" 100
	if grep -Eq 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$MOAT_DEMO_DIR/moatd.log" 2>/dev/null; then
		grep -E -A30 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$MOAT_DEMO_DIR/moatd.log" | head -60 >&2
		rc=1
	fi
	[ "$rc" = 0 ] || { echo "--- moatd.log (tail)" >&2; tail -n 20 "$MOAT_DEMO_DIR/moatd.log" 2>/dev/null >&2; }
	# demo.sh stop kills the moatd of moatd.pid (the demo's, or ours after the restart)
	(cd "$E2E_ROOT" && deploy/demo.sh stop >"$T/stop.out" 2>&1) || cat "$T/stop.out" >&2
	ip netns del "$MOAT_DEMO_NS" 2>/dev/null || true
	rm -rf --one-file-system "$T"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

e2e_log "== the demo, with its web UI forwarded to $URL"
(cd "$E2E_ROOT" && deploy/demo.sh start) >"$T/demo.out" 2>&1 ||
	{ tail -40 "$T/demo.out" >&2; e2e_fail "the demo did not start"; }
grep -q "web UI: $URL/" "$T/demo.out" || { tail "$T/demo.out" >&2; e2e_fail "the demo did not print its URL"; }
export DOCKER_HOST=unix://$MOAT_DEMO_DIR/docker.sock
API=$(ctr_ip api demo) WEB=$(ctr_ip web demo)
export API WEB

# hdr URL [CURL ARGS...] - the response's status line and headers
hdr() { local u=$1; shift; curl -s -o /dev/null -D - "$@" "$u" | tr -d '\r'; }
code() { local u=$1; shift; curl -s -o /dev/null -w '%{http_code}' "$@" "$u"; }
expect_code() {
	local want=$1 what=$2 got; shift 2
	got=$(code "$@")
	[ "$got" = "$want" ] || e2e_fail "$what: HTTP $got, expected $want"
	e2e_log "ok: $what: $got"
}

e2e_log "== moat status, for people"
"$E2E_BUILD/moat" --socket "$MOAT_DEMO_DIR/moat.sock" status >"$T/status.out"
cat "$T/status.out" >&2
for want in '^mode +enforce$' '^runtime +unix://.* \(up\): Docker Engine [0-9].*$' '^policies +5 from ' \
	'^endpoints +4 \(4 containers\), [0-9]+ identities$' '^applies +[0-9]+ \(0 failed\), 0 repairs; .*last: ' \
	'^capture +NFLOG group 1: [0-9]+ records, 0 dropped by the kernel' '^flows +[0-9]+ of at most 65536' \
	'^learning +stopped at .*; 2 flows in the baseline' '^alerts +[1-9][0-9]* raised' '^uptime +'; do
	grep -Eq "$want" "$T/status.out" || e2e_fail "moat status has no line like: $want"
done
grep -q '[{}]' "$T/status.out" && e2e_fail "moat status prints JSON objects"
"$E2E_BUILD/moat" --socket "$MOAT_DEMO_DIR/moat.sock" status -o json | "$PY" -c 'import json, sys
s = json.load(sys.stdin); assert s["capture"]["group"] == 1 and "last_apply" in s' ||
	e2e_fail "moat status -o json is not the JSON status"

e2e_log "== over HTTP, without a token"
h=$(hdr "$URL/")
for want in "HTTP/1.1 200" "Content-Security-Policy: default-src 'none'; script-src 'self';" \
	"frame-ancestors 'none'" "X-Content-Type-Options: nosniff" "Referrer-Policy: no-referrer" \
	"Content-Type: text/html"; do
	grep -qF "$want" <<<"$h" || { echo "$h" >&2; e2e_fail "/ lacks: $want"; }
done
grep -q "unsafe-inline" <<<"$h" && e2e_fail "the CSP allows inline code"
hdr "$URL/api/status" | grep -qF "Cache-Control: no-store" || e2e_fail "/api/status is cacheable"
curl -sf "$URL/api/status" | "$PY" -c 'import json,sys; s=json.load(sys.stdin); assert s["mode"] == "enforce" and s["endpoints"] == 4, s' ||
	e2e_fail "/api/status is not the demo's status"
expect_code 421 "a Host that is no address (DNS rebinding)" "$URL/api/status" -H 'Host: moat.evil.example'
expect_code 404 "/../ out of the web root" "$URL/../../../etc/passwd" --path-as-is
expect_code 404 "%2e%2e out of the web root" "$URL/%2e%2e/%2e%2e/etc/passwd" --path-as-is
expect_code 404 "a subdirectory" "$URL/web/index.html"
expect_code 404 "an unknown API" "$URL/api/policy.reload"
expect_code 405 "a POST to the API" "$URL/api/status" -X POST
expect_code 405 "a DELETE" "$URL/index.html" -X DELETE
expect_code 413 "a body" "$URL/api/status" -X GET --data-binary @/etc/hostname
expect_code 400 "a value over the bound" "$URL/api/flows?from=$(printf 'a%.0s' $(seq 300))"
expect_code 400 "a bad filter" "$URL/api/flows?verdict=maybe"

e2e_log "== in the browser"
"$PY" "$CHECK" demo "$URL/" "$LOGS/web-demo.png" >"$T/check.out" || e2e_fail "the page failed its checks"
cat "$T/check.out"
e2e_log "screenshot: $LOGS/web-demo.png"
[ -z "${MOAT_WEB_SCREENSHOT:-}" ] || cp "$LOGS/web-demo.png" "$MOAT_WEB_SCREENSHOT"

e2e_log "== moatd again, with --web-token-file"
E2E_DIR=$MOAT_DEMO_DIR E2E_NS=$MOAT_DEMO_NS
pid=$(cat "$E2E_DIR/moatd.pid")	# the demo's moatd: not our child, so no moatd_stop
kill -TERM "$pid"
e2e_wait_gone "$pid" 50 || e2e_fail "the demo's moatd did not stop"
TOKEN=$(head -c 24 /dev/urandom | base64 | tr -d '\n')
( umask 077 && echo "$TOKEN" >"$T/token" )
# a web root with a link to a file outside it and a directory: neither is served
mkdir -p "$T/webroot/sub"
cp "$E2E_ROOT"/web/* "$T/webroot/"
ln -s /etc/hostname "$T/webroot/leak.txt"
echo secret >"$T/webroot/sub/inner.txt"
moatd_start "$E2E_BUILD/moatd" --config /dev/null --runtime "$DOCKER_HOST" --kubernetes \
	--policy-dir "$E2E_DIR/policies" --socket "$E2E_DIR/moat.sock" --state-dir "$E2E_DIR/state" \
	--mode enforce --web 127.0.0.1:9641 --web-root "$T/webroot" --web-token-file "$T/token"
wait_for 50 curl -s -o /dev/null "$URL/" || { cat "$E2E_DIR/moatd.log" >&2; e2e_fail "moatd did not serve again"; }
grep -q "a token is required" "$E2E_DIR/moatd.log" || e2e_fail "moatd did not say it requires a token"

expect_code 401 "no token" "$URL/api/status"
hdr "$URL/api/status" | grep -qF 'WWW-Authenticate: Bearer' || e2e_fail "401 without WWW-Authenticate"
expect_code 401 "a wrong bearer token" "$URL/api/status" -H "Authorization: Bearer ${TOKEN}x"
expect_code 401 "a prefix of the token" "$URL/api/status" -H "Authorization: Bearer ${TOKEN:0:10}"
expect_code 401 "a wrong cookie" "$URL/api/graph" -b "moat_token=nope"
expect_code 401 "the event stream without the token" "$URL/api/events"
expect_code 200 "the bearer token" "$URL/api/status" -H "Authorization: Bearer $TOKEN"
expect_code 200 "the token as a cookie" "$URL/api/graph" -b "moat_token=$TOKEN"
expect_code 200 "any Host, with the token" "$URL/api/status" -H "Authorization: Bearer $TOKEN" -H 'Host: moat.example'
expect_code 200 "the page itself (it asks for the token)" "$URL/"
expect_code 404 "a link out of the web root" "$URL/leak.txt"
expect_code 404 "a file below the web root" "$URL/sub/inner.txt"
expect_code 401 "a login with a wrong token" "$URL/api/login" -X POST -H "Authorization: Bearer nope-nope-nope-nope"
cookie=$(hdr "$URL/api/login" -X POST -H "Authorization: Bearer $TOKEN" | grep -i '^Set-Cookie:')
for want in "moat_token=$TOKEN" HttpOnly SameSite=Strict "Path=/"; do
	grep -qF "$want" <<<"$cookie" || e2e_fail "the login cookie lacks $want: $cookie"
done
hdr "$URL/api/logout" -X POST | grep -qi '^Set-Cookie: moat_token=;.*Max-Age=0' || e2e_fail "logout keeps the cookie"

"$PY" "$CHECK" token "$URL/" "$TOKEN" "$LOGS/web-token.png" >"$T/check.out" || e2e_fail "the page failed with the token"
cat "$T/check.out"
e2e_log "screenshot: $LOGS/web-token.png"
echo "PASS"
