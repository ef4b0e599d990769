#!/bin/bash
# make demo / make demo-stop: Moat for real, in a sandbox that touches nothing of the host's
# networking. Needs root, the Debian packages of tests/deps.sh, and build/ (make does both).
#
#   netns moat-demo: a private dockerd, moatd (--kubernetes: the containers carry the
#   io.kubernetes.pod.namespace label as pods do, so policy/examples/three-tier.yaml applies
#   as written), and on one Docker network 10.77.0.0/24:
#
#     +-----+  9000  +-----+  5432  +----+        +----------+
#     | web | -----> | api | -----> | db | <--X-- | outsider |
#     +-----+        +-----+        +----+        +----------+
#
# deploy/demo.sh start   set it up, learn, apply the examples, show what Moat sees; the
#                        sandbox keeps running (state in /tmp/moat.demo)
# deploy/demo.sh stop    remove everything it made
set -eu
cd "$(dirname "$0")/.."
. tests/e2e/lib.sh

# MOAT_DEMO_DIR, MOAT_DEMO_NS and MOAT_DEMO_WEB_PORT let a second sandbox (the README's
# test, the web UI's) run beside one.
E2E_DIR=${MOAT_DEMO_DIR:-/tmp/moat.demo}
E2E_NS=${MOAT_DEMO_NS:-moat-demo}
WEB_PORT=${MOAT_DEMO_WEB_PORT:-9641}
export DOCKER_HOST=unix://$E2E_DIR/docker.sock
SOCK=$E2E_DIR/moat.sock
MOAT=$E2E_BUILD/moat	# build/, or MOAT_BUILD (lib.sh)
MOATD=$E2E_BUILD/moatd
moat() { "$MOAT" --socket "$SOCK" "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '\033[2m$ %s\033[0m\n' "$*"; }

stop() {
	[ -d "$E2E_DIR" ] || { echo "moat demo: nothing to stop"; return 0; }
	MOATD_PID=$(cat "$E2E_DIR/moatd.pid" 2>/dev/null || true)
	E2E_DOCKERD_PID=$(cat "$E2E_DIR/dockerd.pid" 2>/dev/null || true)
	web_forward_stop
	e2e_cleanup
}

# A busybox container labelled like a pod of namespace shop.
pod() {
	local name=$1; shift
	e2e_run "$name" --network demo --label io.kubernetes.pod.namespace=shop "$@"
}

# Every second, connect to HOST PORT from container FROM.
talk() {
	docker exec -d "$1" sh -c "while :; do echo hello | nc -w 1 $2 $3 >/dev/null 2>&1; sleep 1; done"
}

# The web UI listens on 127.0.0.1:9641 inside the sandbox; socat, in the host's namespace,
# forwards 127.0.0.1:$WEB_PORT there (one nsenter'd socat per connection). Nothing of the
# host's networking changes: it is a listening socket on its loopback, gone with demo-stop.
web_forward_start() {
	socat TCP-LISTEN:"$WEB_PORT",bind=127.0.0.1,reuseaddr,fork \
		EXEC:"nsenter --net=/var/run/netns/$E2E_NS socat STDIO TCP4\:127.0.0.1\:9641" \
		</dev/null >>"$E2E_DIR/forward.log" 2>&1 &
	local pid=$!
	echo "$pid" >"$E2E_DIR/forward.pid"
	wait_for 30 curl -sf -o /dev/null "http://127.0.0.1:$WEB_PORT/api/status" &&
		kill -0 "$pid" 2>/dev/null
}

web_forward_stop() {
	local pid
	pid=$(cat "$E2E_DIR/forward.pid" 2>/dev/null) || return 0
	kill "$pid" 2>/dev/null || true
	rm -f "$E2E_DIR/forward.pid"
}

start() {
	[ "$(id -u)" = 0 ] || { echo "moat demo: needs root" >&2; exit 1; }
	if [ -d "$E2E_DIR" ]; then
		echo "moat demo: already running (make demo-stop removes it)" >&2
		exit 1
	fi
	mkdir -p "$E2E_DIR/policies"
	chmod 0755 "$E2E_DIR"	# moatd serves its socket only from a directory others cannot write
	trap 'web_forward_stop; e2e_cleanup' EXIT
	trap 'exit 130' INT TERM
	e2e_netns_add "$E2E_NS"

	say "A private dockerd in network namespace $E2E_NS, and a small app"
	e2e_dockerd_start
	e2e_images
	docker network create --subnet 10.77.0.0/24 demo >/dev/null
	pod web --label app=web --label tier=frontend --label moat.io/port.http=8080/tcp
	pod api --label app=api --label tier=backend --label moat.io/port.api=9000/tcp
	pod db --label app=db --label tier=data --label moat.io/port.postgres=5432/tcp
	pod outsider --label app=outsider
	for s in "web 8080" "api 9000" "db 5432"; do
		set -- $s
		docker exec -d "$1" nc -ll -p "$2" -e /bin/cat
	done
	API=$(ctr_ip api demo) DB=$(ctr_ip db demo)
	talk web "$API" 9000
	talk api "$DB" 5432
	docker ps --format '  {{.Names}}\t{{.Labels}}' | sed -e 's/io.kubernetes.pod.namespace=shop,//' -e 's/,io.kubernetes.pod.namespace=shop//'

	say "moatd, in monitor mode, learning what the app does"
	moatd_start "$MOATD" --config /dev/null --runtime "$DOCKER_HOST" --kubernetes \
		--policy-dir "$E2E_DIR/policies" --socket "$SOCK" --state-dir "$E2E_DIR/state" \
		--mode monitor --metrics 127.0.0.1:9640 --web 127.0.0.1:9641 --web-root "$PWD/web"
	wait_for 50 moat status >/dev/null 2>&1 || { cat "$E2E_DIR/moatd.log" >&2; e2e_fail "moatd did not start"; }
	show "moat endpoints"; moat endpoints
	show "moat learn start"; moat learn start
	sleep 6
	show "moat learn stop"; moat learn stop
	show "moat learn suggest | head -20"; moat learn suggest | head -20

	say "The example policies (policy/examples/three-tier.yaml), enforced"
	cp policy/examples/three-tier.yaml "$E2E_DIR/policies/"
	show "moat policy check $E2E_DIR/policies"; "$MOAT" policy check "$E2E_DIR/policies"
	show "moat policy reload"; moat policy reload
	show "moat mode enforce"; moat mode enforce
	show "moat policy matrix --port 9000/tcp --port 5432/tcp"
	moat policy matrix --port 9000/tcp --port 5432/tcp

	say "The outsider tries the database"
	show "docker exec outsider nc -w 1 $DB 5432"
	if echo hello | docker exec -i outsider nc -w 1 "$DB" 5432 >/dev/null 2>&1; then
		e2e_fail "the outsider reached the database"
	fi
	echo "  (no answer: dropped)"
	sleep 1
	show "moat flows --since 1m"; moat flows --since 1m
	show "moat alerts"; moat alerts
	show "moat policy explain --from shop/outsider --to shop/db --port 5432/tcp"
	moat policy explain --from shop/outsider --to shop/db --port 5432/tcp || true

	say "The service graph"
	moat graph -o dot >"$E2E_DIR/graph.dot"
	if command -v dot >/dev/null; then
		dot -Tsvg "$E2E_DIR/graph.dot" >"$E2E_DIR/graph.svg"
		echo "  $E2E_DIR/graph.svg (Graphviz DOT in $E2E_DIR/graph.dot)"
	else
		cat "$E2E_DIR/graph.dot"
	fi

	say "The live service map"
	if web_forward_start; then
		WEB_URL="http://127.0.0.1:$WEB_PORT/"
	else
		WEB_URL="(127.0.0.1:$WEB_PORT is taken; inside the sandbox: nsenter --net=/var/run/netns/$E2E_NS curl 127.0.0.1:9641/)"
	fi
	echo "  web UI: $WEB_URL"

	trap - EXIT INT TERM
	cat <<EOF

The sandbox keeps running. Poke at it:
  export MOAT_SOCKET=$SOCK DOCKER_HOST=$DOCKER_HOST
  build/moat status; build/moat endpoints; build/moat flows --follow
  docker exec outsider nc -w 1 $API 9000        (denied, then: build/moat alerts)
  nsenter --net=/var/run/netns/$E2E_NS nft list ruleset
  nsenter --net=/var/run/netns/$E2E_NS curl -s 127.0.0.1:9640/metrics
  web UI: $WEB_URL  (from another machine: ssh -L 9641:127.0.0.1:$WEB_PORT this-host)
make demo-stop removes everything.
EOF
}

case "${1:-start}" in
start) start ;;
stop) stop ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
