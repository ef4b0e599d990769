# Moat end-to-end test library. Source it from a test script (bash), then call e2e_setup.
#
#   root namespace (never touched)
#   .............................................................................
#
#   netns $E2E_NS  (forwarding on, v4 and v6)
#   +---------------------------------------------------------------------------+
#   |  dockerd -H unix://$E2E_DIR/docker.sock  (+ its own containerd, shims)    |
#   |  moatd (moatd_start) --runtime unix://$E2E_DIR/docker.sock ...            |
#   |                                                                           |
#   |   docker0 (default bridge)        br-xxxx (e2e_network NAME V4 [V6])      |
#   |     |  vethA  |  vethB              |  vethC        |  vethD             |
#   +-----|---------|--------------------|---------------|---------------------+
#         |         |                    |               |
#    +---------+ +---------+        +---------+     +---------+
#    | eth0    | | eth0    |        | eth0    |     | eth0    |   one netns per
#    | ctr a   | | ctr b   |        | ctr c   |     | ctr d   |   container (made
#    +---------+ +---------+        +---------+     +---------+   by dockerd)
#
# Everything lives under one mktemp directory $E2E_DIR (data-root, exec-root, containerd
# state, sockets, pid files), so tests can run side by side. e2e_cleanup (installed as the
# EXIT trap by e2e_setup) removes containers, kills moatd, dockerd, its containerd and every
# shim that names $E2E_DIR, unmounts what is mounted below $E2E_DIR, removes the cgroups and
# deletes the namespace. Tests add their own cleanup with e2e_on_exit 'command'.
#
# With Podman instead (e2e_podman_start), the same picture with a rootful `podman system
# service` in $E2E_NS: netavark bridges (podman0, podmanN) in place of docker0 and br-xxxx,
# conmon and runc in place of containerd and its shims, and `docker` in these helpers is
# Podman's remote CLI to that service, so e2e_run, ctr_ip, tcp_ok... drive Podman.
#
# Images, built locally (no registry):
#   moat-busybox  Debian's static busybox with applet links (nc does TCP only)
#   moat-host     only bin/lib/lib64 symlinks into usr; run it with -v /usr:/usr:ro to get the
#                 host's tools (python3 for UDP and IPv6); e2e_run_host does that.

E2E_DOCKER=/usr/bin/docker
E2E_DOCKERD=$(PATH=/usr/sbin:/usr/bin:/sbin:/bin command -v dockerd)
E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# Where the test programs are: make B=... builds elsewhere; MOAT_BUILD overrides.
E2E_BUILD=${MOAT_BUILD:-$E2E_ROOT/build}
E2E_ON_EXIT=()

e2e_log() { printf '# %s\n' "$*" >&2; }
e2e_fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
# phase WHAT - log the start of a step of the test, with the seconds since it began.
phase() { e2e_log "== [${SECONDS}s] $*"; }

# e2e_on_exit CMD - run CMD (eval'd) during cleanup, before dockerd goes away; LIFO.
e2e_on_exit() { E2E_ON_EXIT=("$1" "${E2E_ON_EXIT[@]}"); }

# e2e_need_moat - MOATD and MOAT: the daemon and the CLI of $E2E_BUILD; fails unless built.
e2e_need_moat() {
	MOATD=$E2E_BUILD/moatd MOAT=$E2E_BUILD/moat
	[ -x "$MOATD" ] && [ -x "$MOAT" ] || e2e_fail "build first (MOAT_BUILD=DIR for make B=DIR)"
}

# e2e_moat_dirs - after e2e_setup: D=$E2E_DIR, SOCK (moatd's control socket in it) and POL
# (its policy directory, made), the paths moat and the tests' moatd_start calls use.
e2e_moat_dirs() {
	D=$E2E_DIR SOCK=$E2E_DIR/moatd.sock POL=$E2E_DIR/policies
	mkdir -p "$POL"
}

# moat ARGS... - the CLI on the test's moatd ($SOCK).
moat() { "$MOAT" --socket "$SOCK" "$@"; }

# e2e_setup - temp dir, namespace, trap. Needs root.
e2e_setup() {
	[ "$(id -u)" = 0 ] || { echo "SKIP: needs root" >&2; exit 77; }
	E2E_DIR=$(mktemp -d /tmp/moat-e2e.XXXXXX)
	E2E_NS=moat-${E2E_DIR##*.}
	export DOCKER_HOST=unix://$E2E_DIR/docker.sock
	trap e2e_cleanup EXIT
	trap 'exit 130' INT TERM
	e2e_netns_add "$E2E_NS"
}

# e2e_netns_add NAME - a namespace with lo up and forwarding on for v4 and v6.
e2e_netns_add() {
	ip netns add "$1"
	e2e_nsexec "$1" ip link set lo up
	e2e_nsexec "$1" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
		net.ipv6.conf.default.forwarding=1
}

e2e_netns_del() { ip netns del "$1" 2>/dev/null || true; }

# e2e_nsexec NS CMD... - run in NS's network namespace only. nsenter, not `ip netns exec`:
# that also remounts /sys, which hides the cgroup mounts dockerd and runc need.
e2e_nsexec() { local ns=$1; shift; nsenter --net=/var/run/netns/"$ns" "$@"; }

# ns CMD... - run in the test namespace.
ns() { e2e_nsexec "$E2E_NS" "$@"; }

docker() { "$E2E_DOCKER" "$@"; }

# e2e_dockerd_start [EXTRA DOCKERD ARGS] - start the private dockerd, wait until it answers.
e2e_dockerd_start() {
	local d=$E2E_DIR t0=$SECONDS
	mkdir -p "$d/data" "$d/exec" "$d/cgroup"
	[ -f "$d/daemon.json" ] || echo '{}' >"$d/daemon.json"
	# --exec-root also holds the private containerd's socket and state (exec/containerd),
	# its root goes under --data-root. --config-file keeps /etc/docker/daemon.json out.
	# --cgroup-parent keeps our containers' cgroups apart from other tests'.
	ns "$E2E_DOCKERD" --data-root "$d/data" --exec-root "$d/exec" \
		-H "$DOCKER_HOST" --pidfile "$d/dockerd.pid" --storage-driver vfs \
		--config-file "$d/daemon.json" --cgroup-parent "/moat-e2e-${d##*.}" \
		--userland-proxy=false --log-level warn "$@" \
		</dev/null >>"$d/dockerd.log" 2>&1 &
	E2E_DOCKERD_PID=$!
	disown "$E2E_DOCKERD_PID"	# no "Killed" job notice when a test kills it on purpose
	local i
	for i in $(seq 200); do
		docker version >/dev/null 2>&1 && { e2e_log "dockerd up in $((SECONDS - t0))s"; return 0; }
		kill -0 "$E2E_DOCKERD_PID" 2>/dev/null || break
		sleep 0.1
	done
	tail -n 30 "$d/dockerd.log" >&2
	e2e_fail "dockerd did not come up"
}

# e2e_dockerd_kill [SIGNAL] - kill dockerd only (its containers' shims stay, as after a
# crash), and wait for it and its containerd to be gone. SIGNAL defaults to KILL.
e2e_dockerd_kill() {
	local pid cpid cpidf=$E2E_DIR/exec/containerd/containerd.pid
	pid=$(cat "$E2E_DIR/dockerd.pid" 2>/dev/null) || pid=${E2E_DOCKERD_PID:-}
	[ -n "$pid" ] || return 0
	cpid=$(cat "$cpidf" 2>/dev/null) || cpid=
	kill -"${1:-KILL}" "$pid" 2>/dev/null || true
	e2e_wait_gone "$pid" 100
	# containerd dies with dockerd (parent-death signal) but is reparented to init first; an
	# init that is slow to reap leaves a zombie, and a new dockerd that finds the old pid
	# "alive" in containerd.pid waits for it instead of starting its own.
	[ -n "$cpid" ] && e2e_wait_gone "$cpid" 50 && rm -f "$cpidf"
	rm -f "$E2E_DIR/dockerd.pid"
}

# e2e_alive PID - running, and not a zombie.
e2e_alive() {
	local st
	st=$(sed 's/.*) //; s/ .*//' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ]
}

# e2e_wait_gone PID TENTHS - wait up to TENTHS/10 s for PID to exit (zombies count as gone).
e2e_wait_gone() {
	local i
	for i in $(seq "$2"); do e2e_alive "$1" || return 0; sleep 0.1; done
	return 1
}

# Pids of every process whose command line names our temp dir: containerd, the shims
# (they daemonise, so they are not dockerd's children) and anything else we started.
e2e_our_pids() {
	# One grep over every cmdline (a fork per process is slow on a busy machine); it lists
	# itself too, already gone when the caller signals it.
	grep -lsaF "$E2E_DIR/" /proc/[0-9]*/cmdline 2>/dev/null | sed 's,^/proc/\([0-9]*\)/cmdline$,\1,' |
		grep -vx "$$"
	return 0
}

# e2e_dockerd_stop - containers removed, dockerd, containerd and shims gone.
e2e_dockerd_stop() {
	local ids pid
	if docker version >/dev/null 2>&1; then
		ids=$(timeout 10 "$E2E_DOCKER" ps -aq 2>/dev/null)
		[ -n "$ids" ] && timeout 30 "$E2E_DOCKER" rm -f $ids >/dev/null 2>&1
	fi
	e2e_dockerd_kill TERM
	# containerd stops with dockerd; shims of containers dockerd no longer knew about, and a
	# containerd orphaned by a dockerd killed with SIGKILL, do not.
	for pid in $(e2e_our_pids); do kill -TERM "$pid" 2>/dev/null; done
	for pid in $(e2e_our_pids); do e2e_wait_gone "$pid" 30 || kill -KILL "$pid" 2>/dev/null; done
	# Containers' processes whose shim died first are reparented to us or init; they still
	# sit in our cgroup.
	e2e_cgroup_kill
}

e2e_cgroup_dirs() {
	local g=/moat-e2e-${E2E_DIR##*.}
	find /sys/fs/cgroup/*"$g" -maxdepth 0 -type d 2>/dev/null
}

e2e_cgroup_kill() {
	local c pid
	for c in $(e2e_cgroup_dirs); do
		for pid in $(find "$c" -name cgroup.procs -exec cat {} + 2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null
		done
	done
	sleep 0.2
	for c in $(e2e_cgroup_dirs); do find "$c" -depth -type d -exec rmdir {} + 2>/dev/null; done
	return 0
}

# Unmount everything below $E2E_DIR, deepest first (netns bind mounts, rootfs, shm, ...).
e2e_umount_all() {
	local m
	for m in $(awk -v d="$E2E_DIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
		umount -l "$m" 2>/dev/null
	done
	return 0
}

e2e_cleanup() {
	local rc=$? c
	trap - EXIT
	set +e
	for c in "${E2E_ON_EXIT[@]}"; do eval "$c"; done
	[ -n "${E2E_DIR:-}" ] || exit "$rc"
	moatd_stop
	e2e_podman_stop
	# a moatd built with make SAN=1 (MOAT_BUILD=build-san) reports here, and fails the test
	if grep -Eq 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$E2E_DIR/moatd.log" 2>/dev/null; then
		echo "--- sanitizer reports in moatd.log" >&2
		grep -E -A30 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$E2E_DIR/moatd.log" | head -n 80 >&2
		rc=1
	fi
	e2e_dockerd_stop
	e2e_umount_all
	[ -n "${E2E_NS:-}" ] && e2e_netns_del "$E2E_NS"
	if [ "$rc" != 0 ] && [ -f "$E2E_DIR/moatd.log" ]; then
		echo "--- moatd.log (tail)" >&2; tail -n 40 "$E2E_DIR/moatd.log" >&2
	fi
	if [ "$rc" != 0 ] && [ -f "$E2E_DIR/dockerd.log" ]; then
		echo "--- dockerd.log (tail)" >&2; tail -n 20 "$E2E_DIR/dockerd.log" >&2
	fi
	rm -rf --one-file-system "$E2E_DIR"
	exit "$rc"
}

# e2e_images - build moat-busybox and moat-host into the private dockerd (or Podman service).
e2e_images() {
	local t0=$SECONDS r=$E2E_DIR/img
	mkdir -p "$r/bb/bin" "$r/bb/etc" "$r/bb/tmp" "$r/host/etc" "$r/host/tmp"
	cp /bin/busybox "$r/bb/bin/busybox"
	local a
	for a in $(/bin/busybox --list); do
		[ "$a" = busybox ] || ln -s busybox "$r/bb/bin/$a"
	done
	echo 'root:x:0:0:root:/root:/bin/sh' >"$r/bb/etc/passwd"
	cp "$r/bb/etc/passwd" "$r/host/etc/passwd"
	ln -s usr/bin "$r/host/bin"
	ln -s usr/lib "$r/host/lib"
	ln -s usr/lib64 "$r/host/lib64"
	ln -s usr/sbin "$r/host/sbin"
	mkdir -p "$r/host/usr"
	tar -C "$r/bb" -c . | docker import - moat-busybox >/dev/null
	tar -C "$r/host" -c . | docker import - moat-host >/dev/null
	rm -rf "$r"
	e2e_log "images built in $((SECONDS - t0))s"
}

# e2e_network NAME V4SUBNET [V6SUBNET] - a user bridge network, dual-stack when V6 given.
e2e_network() {
	if [ -n "${3:-}" ]; then
		docker network create --ipv6 --subnet "$2" --subnet "$3" "$1" >/dev/null
	else
		docker network create --subnet "$2" "$1" >/dev/null
	fi
}

# The default command: sleep, but leave at once on SIGTERM (PID 1 has no default handlers,
# so a plain sleep makes every docker stop, and dockerd's restart, wait 10 s per container).
E2E_SLEEP=(sh -c 'trap "exit 0" TERM; sleep 1000000 & wait')

# e2e_run NAME [DOCKER RUN ARGS...] -- [CMD...] - a detached busybox container that sleeps
# unless a command is given after --.
e2e_run() {
	local name=$1 args=() ; shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do args+=("$1"); shift; done
	[ "${1:-}" = -- ] && shift
	[ $# -gt 0 ] || set -- "${E2E_SLEEP[@]}"
	docker run -d --name "$name" "${args[@]}" moat-busybox "$@" >/dev/null
}

# e2e_run_host NAME [DOCKER RUN ARGS...] -- [CMD...] - the same with the host's /usr.
e2e_run_host() {
	local name=$1 args=() ; shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do args+=("$1"); shift; done
	[ "${1:-}" = -- ] && shift
	[ $# -gt 0 ] || set -- "${E2E_SLEEP[@]}"
	docker run -d --name "$name" -v /usr:/usr:ro "${args[@]}" moat-host "$@" >/dev/null
}

# ctr_ip NAME NETWORK [6] - the container's v4 (or v6) address on NETWORK.
ctr_ip() {
	local f=IPAddress
	[ "${3:-}" = 6 ] && f=GlobalIPv6Address
	docker inspect -f "{{(index .NetworkSettings.Networks \"$2\").$f}}" "$1"
}

# Servers: tcp_echo_server CTR PORT (busybox), udp_echo_server CTR PORT (moat-host, v4+v6).
tcp_echo_server() { docker exec -d "$1" nc -ll -p "$2" -e /bin/cat; }
udp_echo_server() {
	docker exec -d "$1" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", int(sys.argv[1])))
while True:
    d, a = s.recvfrom(65535)
    s.sendto(d, a)' "$2"
}

# tcp6_echo_server CTR PORT - a dual-stack TCP echo server (moat-host).
tcp6_echo_server() {
	docker exec -d "$1" python3 -c '
import socket, sys, threading
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", int(sys.argv[1])))
s.listen(64)
def echo(c):
    with c:
        while True:
            d = c.recv(65535)
            if not d:
                return
            c.sendall(d)
while True:
    threading.Thread(target=echo, args=(s.accept()[0],), daemon=True).start()' "$2"
}

# tcp_ok FROM IP PORT - 0 when FROM (any image) connects to IP:PORT and gets its line echoed
# back within ~2 s. Busybox nc for v4 from moat-busybox; use tcp6_ok / moat-host otherwise.
tcp_ok() {
	local tok="moat-$RANDOM$RANDOM" out
	out=$(echo "$tok" | docker exec -i "$1" timeout 2 nc -w 2 "$2" "$3" 2>/dev/null) || true
	[ "$out" = "$tok" ]
}

# python3 client in a moat-host container: proto (tcp|udp), ip (v4 or v6), port.
_py_client='
import socket, sys
proto, ip, port, tok = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].encode()
fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
s.settimeout(2)
try:
    s.connect((ip, port))
    s.sendall(tok)
    sys.exit(0 if s.recv(65535) == tok else 1)
except OSError:
    sys.exit(1)'

# udp_ok FROM IP PORT, tcp6_ok FROM IP PORT, udp6_ok - FROM must be a moat-host container.
udp_ok() { docker exec "$1" python3 -c "$_py_client" udp "$2" "$3" "moat-$RANDOM" 2>/dev/null; }
tcp6_ok() { docker exec "$1" python3 -c "$_py_client" tcp "$2" "$3" "moat-$RANDOM" 2>/dev/null; }
udp6_ok() { udp_ok "$@"; }

# expect_ok / expect_fail DESCRIPTION CMD... - assertions that say what was expected.
expect_ok() { local d=$1; shift; "$@" || e2e_fail "expected to succeed: $d"; e2e_log "ok: $d"; }
expect_fail() { local d=$1; shift; ! "$@" || e2e_fail "expected to fail: $d"; e2e_log "ok: $d (fails)"; }

# moatd_start BINARY [ARGS...] - run moatd in the test namespace in the background; its
# output goes to $E2E_DIR/moatd.log, its pid to $MOATD_PID. ARGS pass through, e.g.
#   moatd_start "$E2E_BUILD/moatd" --runtime "$DOCKER_HOST" --policy-dir D \
#       --socket "$E2E_DIR/moatd.sock" --state-dir "$E2E_DIR/moatd" --mode enforce
moatd_start() {
	local bin=$1; shift
	# nsenter execs moatd in place (no function, no subshell), so $! is moatd itself and a
	# kill -9 of $MOATD_PID is a kill -9 of the daemon.
	# E2E_DEBUG=1: moatd logs at debug level (after the test's own flags, so it wins)
	nsenter --net=/var/run/netns/"$E2E_NS" "$bin" "$@" ${E2E_DEBUG:+--log-level debug} \
		</dev/null >>"$E2E_DIR/moatd.log" 2>&1 &
	MOATD_PID=$!
	echo "$MOATD_PID" >"$E2E_DIR/moatd.pid"
}

# moatd_stop - TERM, then KILL after 5 s. Safe when not running.
moatd_stop() {
	[ -n "${MOATD_PID:-}" ] || return 0
	kill -TERM "$MOATD_PID" 2>/dev/null
	e2e_wait_gone "$MOATD_PID" 50 || kill -KILL "$MOATD_PID" 2>/dev/null
	wait "$MOATD_PID" 2>/dev/null
	MOATD_PID=
	return 0
}

# wait_for TENTHS CMD... - poll CMD every 0.1 s until it succeeds; 1 on timeout.
wait_for() {
	local n=$1 i; shift
	for i in $(seq "$n"); do "$@" && return 0; sleep 0.1; done
	return 1
}

# e2e_moatd_enforce [ARGS...] - moatd_start of $MOATD in enforce mode on the test's runtime
# (the Podman service if started, else dockerd), policies $POL, socket $SOCK, state $D/state,
# resync every 2 s, then ARGS; fails (moatd.log shown) unless it answers within 5 s.
e2e_moatd_enforce() {
	local rt=$DOCKER_HOST
	[ -z "${E2E_PODMAN_SOCK:-}" ] || rt=unix://$E2E_PODMAN_SOCK
	moatd_start "$MOATD" --config /dev/null --runtime "$rt" --policy-dir "$POL" \
		--socket "$SOCK" --state-dir "$D/state" --mode enforce --resync-interval 2 "$@"
	wait_for 50 moat status >/dev/null 2>&1 || { cat "$D/moatd.log" >&2; e2e_fail "moatd did not answer"; }
}

# ---- checks of an enforcing moatd, shared by the Docker and the Podman tests ----
# They use the test's $POL (the policy directory), $E2E_DIR and its moat (the CLI on moatd's
# socket); each container named is labelled app=NAME.

# e2e_spoof_check DST SRC OWNER DST_IP OWNER_IP - a policy lets SRC and OWNER reach DST on
# 9091/udp; SRC (NET_ADMIN, moat-host) sends DST_IP a datagram from its own address (the
# positive control, must arrive), then one from OWNER_IP (must be dropped); policy removed after.
e2e_spoof_check() {
	local dst=$1 src=$2 owner=$3 dst_ip=$4 owner_ip=$5 got=$E2E_DIR/got
	local send='import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
if len(sys.argv) > 3:
    s.bind((sys.argv[3], 0))
s.sendto(sys.argv[2].encode(), (sys.argv[1], 9091))'
	docker exec -d "$dst" python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 9091))
while True:
    d, a = s.recvfrom(100)
    open("/tmp/got", "a").write("%s %s\n" % (a[0], d.decode()))'
	cat >"$POL/50-spoof.yaml" <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: $dst-spoof-probe}
spec:
  podSelector: {matchLabels: {app: $dst}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: $owner}}}, {podSelector: {matchLabels: {app: $src}}}]
      ports: [{port: 9091, protocol: UDP}]
EOF
	moat policy reload
	sleep 0.3
	docker exec "$src" python3 -c "$send" "$dst_ip" honest
	docker exec "$src" ip addr add "$owner_ip/32" dev eth0
	docker exec "$src" python3 -c "$send" "$dst_ip" spoofed "$owner_ip"
	sleep 0.5
	docker exec "$dst" cat /tmp/got >"$got" || true
	cat "$got" >&2
	grep -q honest "$got" || e2e_fail "the honest datagram did not arrive (test is broken)"
	if grep -q spoofed "$got"; then e2e_fail "a spoofed datagram passed"; fi
	e2e_log "ok: spoofed source dropped"
	docker exec "$src" ip addr del "$owner_ip/32" dev eth0
	rm "$POL/50-spoof.yaml"
	moat policy reload
}

# e2e_revoke_check CLIENT DST_IP PORT POLICY - CLIENT (moat-host) streams to DST_IP:PORT
# (an echo server); once echoes flow, POLICY's "from app: CLIENT" is made "app: nobody" and
# reloaded: the stream must stop. POLICY is restored and reloaded after.
e2e_revoke_check() {
	local c=$1 a b
	docker exec -d "$c" python3 -c '
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1)
n = 0
while True:
    s.sendall(b"x")
    try:
        if s.recv(10):
            n += 1
            open("/tmp/echoes", "w").write(str(n))
    except OSError:
        pass
    time.sleep(0.1)' "$2" "$3"
	wait_for 50 _e2e_echoes_over "$c" 3 || e2e_fail "stream did not start"
	sed -i "s/app: $c}}}]/app: nobody}}}]/" "$4"
	moat policy reload
	sleep 1.5
	a=$(_e2e_echoes "$c"); sleep 1.5; b=$(_e2e_echoes "$c")
	[ "$a" = "$b" ] || e2e_fail "revoked stream still flowing ($a -> $b echoes)"
	e2e_log "ok: revoked stream stopped at $b echoes"
	sed -i "s/app: nobody}}}]/app: $c}}}]/" "$4"
	moat policy reload
}
_e2e_echoes() { docker exec "$1" cat /tmp/echoes 2>/dev/null || echo 0; }
_e2e_echoes_over() { [ "$(_e2e_echoes "$1")" -gt "$2" ]; }

# ---- crafted frames (slip.py), for tests whose containers mount this directory at /e2e ----
# Reads of a container's state go through its pid (nsenter, /proc/PID/root), not docker exec:
# cheaper, and the container has no say in them.
declare -gA PID=()

# ctr_pids CTR... - remember each container's pid for in_ctr, sniffers and frames.
ctr_pids() { local c; for c in "$@"; do PID[$c]=$(docker inspect -f '{{.State.Pid}}' "$c"); done; }

# in_ctr CTR CMD... - run CMD in CTR's network namespace only.
in_ctr() { local c=$1; shift; nsenter -t "${PID[$c]}" -n "$@"; }

# ctr_mac CTR NETWORK - the MAC the runtime gave CTR on NETWORK.
ctr_mac() { docker inspect -f "{{(index .NetworkSettings.Networks \"$2\").MacAddress}}" "$1"; }

# ll6 CTR - its eth0's IPv6 link-local address.
ll6() { in_ctr "$1" ip -6 -o addr show dev eth0 scope link | awk '{ sub("/.*", "", $4); print $4 }'; }

# ctr_port CTR BRIDGE - CTR's port on BRIDGE: the bridge port whose index its eth0 names as peer.
ctr_port() {
	local peer
	peer=$(in_ctr "$1" ip -o link show eth0 | sed -n 's/^[0-9]*: eth0@if\([0-9]*\):.*/\1/p')
	ns ip -o link show master "$2" | awk -v i="$peer" -F': ' '$1 == i { sub("@.*", "", $2); print $2 }'
}

# sniffers CTR... - record what each CTR's eth0 receives (slip.py sniff), once ready.
sniffers() {
	local c
	for c in "$@"; do
		docker exec -d "$c" python3 /e2e/slip.py sniff eth0 /tmp/frames
		wait_for 50 grep -qs ready "/proc/${PID[$c]}/root/tmp/frames" || e2e_fail "sniffer on $c"
	done
}

# send CTR: the commands on stdin, crafted and sent by CTR (slip.py run).
send() { docker exec -i "$1" python3 /e2e/slip.py run; }
# frames CTR: refresh $E2E_DIR/frames.CTR, one line per frame CTR received so far.
frames() {
	sleep 0.3
	/usr/bin/python3 "$E2E_ROOT/tests/e2e/slip.py" show "/proc/${PID[$1]}/root/tmp/frames" \
		>"$E2E_DIR/frames.$1"
}
seen() { grep -Eq "marks=([^ ]*,)?$2(,|$)" "$E2E_DIR/frames.$1"; }
leak() { e2e_fail "$2 [$1]"; }
held() { e2e_log "ok: $2 [$1] (blocked)"; }
# blocked CTR MARK WHAT / arrived CTR MARK WHAT - on the frames last read from CTR.
blocked() { if seen "$1" "$2"; then leak "$2" "$3 reached $1"; else held "$2" "$3"; fi; }
arrived() {
	seen "$1" "$2" || e2e_fail "positive control did not arrive at $1: $3 [$2]"
	e2e_log "ok: $3 [$2] (arrives)"
}

# ---- Podman ----

# e2e_podman_start - a private rootful Podman service (podman system service) in $E2E_NS,
# everything of it under $E2E_DIR/podman: storage (vfs), run and tmp dirs, network configs,
# the event log (file backend: no journald here), file locks (the default shm locks are one
# segment for every Podman of the machine). runc: crun refuses this machine's hybrid cgroups;
# cgroupfs: no systemd. The ulimits: in this sandbox the runtime cannot set the defaults'.
# Sets E2E_PODMAN_SOCK and E2E_PODMAN_PID, and points the `docker` of these helpers at a
# Podman CLI talking to the service (podman --remote). Its containers' netns are Podman's
# own, under /run/netns/netns-*, removed with the containers by e2e_podman_stop.
e2e_podman_start() {
	local d=$E2E_DIR/podman t0=$SECONDS i
	[ -n "${E2E_DIR:-}" ] && [ -n "${E2E_NS:-}" ] || e2e_fail "e2e_setup first"
	mkdir -p "$d/root" "$d/runroot" "$d/tmp" "$d/net"
	[ -f "$d/containers.conf" ] || cat >"$d/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
runtime = "runc"
events_logger = "file"
events_logfile_path = "$d/events.log"
cgroup_manager = "cgroupfs"
lock_type = "file"
[network]
network_config_dir = "$d/net"
EOF
	E2E_PODMAN_SOCK=$d/podman.sock
	rm -f "$E2E_PODMAN_SOCK"
	printf '#!/bin/sh\nexec /usr/bin/podman --remote --url unix://%s "$@"\n' "$E2E_PODMAN_SOCK" \
		>"$E2E_DIR/podman-cli"
	chmod +x "$E2E_DIR/podman-cli"
	E2E_DOCKER=$E2E_DIR/podman-cli
	# nsenter execs podman in place: $! is the service
	CONTAINERS_CONF=$d/containers.conf nsenter --net=/var/run/netns/"$E2E_NS" /usr/bin/podman \
		--root "$d/root" --runroot "$d/runroot" --tmpdir "$d/tmp" --storage-driver vfs \
		--events-backend file --cgroup-manager cgroupfs --network-config-dir "$d/net" \
		system service --time=0 "unix://$E2E_PODMAN_SOCK" </dev/null >>"$d/service.log" 2>&1 &
	E2E_PODMAN_PID=$!
	echo "$E2E_PODMAN_PID" >"$d/service.pid"
	disown "$E2E_PODMAN_PID"
	for i in $(seq 200); do
		[ -S "$E2E_PODMAN_SOCK" ] && podman version >/dev/null 2>&1 &&
			{ e2e_log "podman service up in $((SECONDS - t0))s"; return 0; }
		e2e_alive "$E2E_PODMAN_PID" || break
		sleep 0.1
	done
	tail -n 30 "$d/service.log" >&2
	e2e_fail "the podman service did not come up"
}

# podman ARGS... - Podman's CLI, through the test's service.
podman() { "$E2E_DIR/podman-cli" "$@"; }

# e2e_podman_kill [SIGNAL] - the service only (conmon keeps its containers running, as after a
# crash); e2e_podman_start starts it again on the same storage.
e2e_podman_kill() {
	[ -n "${E2E_PODMAN_PID:-}" ] || return 0
	kill -"${1:-KILL}" "$E2E_PODMAN_PID" 2>/dev/null
	e2e_wait_gone "$E2E_PODMAN_PID" 100 || e2e_fail "the podman service did not exit"
	E2E_PODMAN_PID=
}

# e2e_podman_stop - pods and containers removed (their netns with them), the service gone.
# A service killed by the test is started again first: only it removes what it made.
e2e_podman_stop() {
	[ -n "${E2E_PODMAN_SOCK:-}" ] || return 0
	[ -n "${E2E_PODMAN_PID:-}" ] || (e2e_podman_start) >/dev/null 2>&1 || true
	E2E_PODMAN_PID=${E2E_PODMAN_PID:-$(cat "$E2E_DIR/podman/service.pid" 2>/dev/null)}
	timeout 60 "$E2E_DIR/podman-cli" pod rm -af -t 0 >/dev/null 2>&1
	timeout 60 "$E2E_DIR/podman-cli" rm -af -t 0 >/dev/null 2>&1
	[ -n "$E2E_PODMAN_PID" ] && kill -TERM "$E2E_PODMAN_PID" 2>/dev/null &&
		{ e2e_wait_gone "$E2E_PODMAN_PID" 100 || kill -KILL "$E2E_PODMAN_PID" 2>/dev/null; }
	E2E_PODMAN_PID= E2E_PODMAN_SOCK=
	return 0
}

# ---- README commands ----

# readme_block HEADING - the commands of the first ```sh block after the line HEADING of
# README.md, one a line (comments dropped, continuation lines joined).
readme_block() {
	awk -v h="$1" '$0 == h { on = 1; next } on && /^```sh/ { inb = 1; next }
		inb && /^```/ { exit } inb { print }' "$E2E_ROOT/README.md" |
		sed 's/ \{1,\}#.*//' | awk '{ if (sub(/\\$/, "")) { acc = acc $0; next } print acc $0; acc = "" }' |
		sed 's/  */ /g; /^ *$/d'
}

# readme_cmd LINE - run one README command in this test's sandbox, from the repository's top:
# sudo dropped, build/ -> $E2E_BUILD/, the well-known sockets and policy directory -> the
# test's, the image busybox -> moat-busybox (no registry here); moatd is started by
# moatd_start with the test's control socket and state directory (and no config file), moat
# talks to that socket; `podman system service` is e2e_podman_start's (with the test's
# private storage), so that line is only checked, not run. podman and docker are the
# helpers' (the test's service or dockerd).
readme_cmd() {
	local l=$1 sock=$E2E_DIR/moatd.sock
	l=${l//sudo /}
	l=${l//build\//$E2E_BUILD/}
	l=${l//unix:\/\/\/var\/run\/docker.sock/$DOCKER_HOST}
	[ -z "${E2E_PODMAN_SOCK:-}" ] || l=${l//unix:\/\/\/run\/podman\/podman.sock/unix://$E2E_PODMAN_SOCK}
	l=${l//\/etc\/moat\/policies/$E2E_DIR/policies}
	l=${l// busybox / moat-busybox }
	e2e_log "README: $l"
	case $l in
	"podman system service "*) return 0 ;;
	"$E2E_BUILD/moatd "*)
		mkdir -p "$E2E_DIR/policies"
		local args here=$PWD
		eval "args=(${l#"$E2E_BUILD/moatd "})"
		cd "$E2E_ROOT"	# relative paths are the README's, from the top (moatd keeps its cwd)
		moatd_start "$E2E_BUILD/moatd" "${args[@]}" --config /dev/null --socket "$sock" \
			--state-dir "$E2E_DIR/state"
		cd "$here"
		wait_for 100 "$E2E_BUILD/moat" --socket "$sock" status >/dev/null 2>&1 ||
			e2e_fail "moatd did not answer"
		;;
	"$E2E_BUILD/moat "*) (cd "$E2E_ROOT" && eval "\"$E2E_BUILD/moat\" --socket \"$sock\" ${l#"$E2E_BUILD/moat "}") ;;
	*) (cd "$E2E_ROOT" && eval "$l") ;;
	esac
}
