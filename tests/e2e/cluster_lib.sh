# Helpers for tests of moatd instances sharing etcd (daemon/cluster/). Source after lib.sh
# and call e2e_setup first. Everything lives under $E2E_DIR and in namespaces named after
# $E2E_NS, removed by e2e_cleanup (cl_* register their own cleanup with e2e_on_exit).
#
#   netns $CL_ETCD_NS: etcd (127.0.0.1:2379, its own --data-dir), and a TCP proxy on
#   :2479 to it (socat), so that a test can cut every moatd off etcd (cl_proxy_stop) while
#   etcd itself goes on and etcdctl still reaches it directly.
#   Each node's namespace reaches it over a veth: node N (1..) is 10.233.N.1/30, the etcd
#   side 10.233.N.2/30; a node's moatd uses --etcd http://10.233.N.2:2479.


# cl_setup - the two nodes' start: needs moatd, moat (e2e_need_moat) and etcd; e2e_setup, etcd
# (cl_etcd_start), node b's namespace $NSB, both linked to etcd (a: 10.233.1.x, b: 10.233.2.x).
# Sets D=$E2E_DIR and NSB.
cl_setup() {
	e2e_need_moat
	command -v etcd >/dev/null || e2e_fail "etcd is not installed (tests/deps.sh)"
	e2e_setup
	D=$E2E_DIR
	NSB=${E2E_NS}-b
	cl_etcd_start
	e2e_netns_add "$NSB"
	e2e_on_exit "e2e_netns_del $NSB"
	cl_node_link "$E2E_NS" 1
	cl_node_link "$NSB" 2
}

# cl_etcdctl ARGS... - etcdctl (v3) on etcd itself, never through the proxy.
cl_etcdctl() { e2e_nsexec "$CL_ETCD_NS" env ETCDCTL_API=3 etcdctl --endpoints http://127.0.0.1:2379 "$@"; }

# cl_etcd_start - the etcd namespace, etcd in it, and the proxy; waits until etcd answers.
cl_etcd_start() {
	local d=$E2E_DIR/etcd
	CL_ETCD_NS=${E2E_NS}-etcd
	mkdir -p "$d"
	e2e_netns_add "$CL_ETCD_NS"
	e2e_on_exit "e2e_netns_del $CL_ETCD_NS"
	# nsenter, not a shell function: $! is etcd itself
	nsenter --net=/var/run/netns/"$CL_ETCD_NS" etcd --name moat-test --data-dir "$d/data" \
		--listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
		--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
		--initial-cluster moat-test=http://127.0.0.1:2380 --log-level warn \
		</dev/null >>"$d/etcd.log" 2>&1 &
	CL_ETCD_PID=$!
	disown "$CL_ETCD_PID"
	e2e_on_exit 'cl_stop "$CL_ETCD_PID"'
	wait_for 100 cl_etcdctl endpoint health >/dev/null 2>&1 || { tail "$d/etcd.log" >&2; e2e_fail "etcd did not come up"; }
	cl_proxy_start
	e2e_on_exit 'cl_proxy_stop'
	e2e_log "etcd up in $CL_ETCD_NS"
}

# cl_proxy_start / cl_proxy_stop - every moatd reaches etcd through it; stopping it resets
# their connections (its per-connection children share its process group).
cl_proxy_start() {
	nsenter --net=/var/run/netns/"$CL_ETCD_NS" setsid socat TCP-LISTEN:2479,reuseaddr,fork TCP:127.0.0.1:2379 \
		</dev/null >>"$E2E_DIR/etcd/proxy.log" 2>&1 &
	CL_PROXY_PID=$!
	disown "$CL_PROXY_PID"
	wait_for 50 e2e_nsexec "$CL_ETCD_NS" sh -c 'ss -ltn | grep -q :2479' || e2e_fail "the proxy did not listen"
}
cl_proxy_stop() {
	[ -n "${CL_PROXY_PID:-}" ] || return 0
	kill -KILL -- "-$CL_PROXY_PID" 2>/dev/null || true
	e2e_wait_gone "$CL_PROXY_PID" 50 || true
	CL_PROXY_PID=
}

# cl_stop PID - TERM, then KILL after 5 s.
cl_stop() {
	[ -n "${1:-}" ] || return 0
	kill -TERM "$1" 2>/dev/null || return 0
	e2e_wait_gone "$1" 50 || kill -KILL "$1" 2>/dev/null
	return 0
}

# cl_node_link NS N - a veth from NS to the etcd namespace: NS 10.233.N.1, etcd 10.233.N.2.
cl_node_link() {
	local ns=$1 n=$2 a
	a=cle${n}${E2E_NS##*-}
	ip link add "${a}a" netns "$ns" type veth peer name "${a}b" netns "$CL_ETCD_NS"
	e2e_nsexec "$ns" ip addr add "10.233.$n.1/30" dev "${a}a"
	e2e_nsexec "$ns" ip link set "${a}a" up
	e2e_nsexec "$CL_ETCD_NS" ip addr add "10.233.$n.2/30" dev "${a}b"
	e2e_nsexec "$CL_ETCD_NS" ip link set "${a}b" up
}

# cl_moatd_start NAME NS ARGS... - a moatd in NS, logging to $E2E_DIR/NAME.log (node "a"
# logs to moatd.log, which lib.sh shows when the test fails and reads for sanitizer
# reports; the others are appended to it at cleanup). Sets CL_PID_<NAME>.
cl_moatd_start() {
	local name=$1 ns=$2 log; shift 2
	log=$E2E_DIR/$name.log
	[ "$name" = a ] && log=$E2E_DIR/moatd.log
	nsenter --net=/var/run/netns/"$ns" "$E2E_BUILD/moatd" "$@" ${E2E_DEBUG:+--log-level debug} \
		</dev/null >>"$log" 2>&1 &
	eval "CL_PID_$name=$!"
	if [ "$name" != a ] && [ -z "$(eval echo "\${CL_HOOK_$name:-}")" ]; then
		eval "CL_HOOK_$name=1"
		e2e_on_exit "cl_stop \"\${CL_PID_$name:-}\"; { echo '--- $name.log'; cat '$log'; } >>'$E2E_DIR/moatd.log' 2>/dev/null"
	fi
	if [ "$name" = a ]; then
		MOATD_PID=$!	# lib.sh stops it
	fi
}

# cl_moat NAME ARGS... - the CLI on node NAME's socket.
cl_moat() { local n=$1; shift; "$E2E_BUILD/moat" --socket "$E2E_DIR/$n.sock" "$@"; }

# cl_status NAME PYEXPR - a value of node NAME's `moat status -o json` (s is the reply).
cl_status() {
	cl_moat "$1" status -o json 2>/dev/null | python3 -c "import json, sys; s = json.load(sys.stdin); print($2)"
}

# cl_has NAME ENDPOINT / cl_lacks - does node NAME's moatd list ns/ENDPOINT?
cl_has() { cl_moat "$1" endpoints 2>/dev/null | cut -f1 | grep -qx "$2"; }
cl_lacks() { cl_moat "$1" endpoints >/dev/null 2>&1 && ! cl_has "$@"; }

# cl_element NS ADDR / cl_no_element - is ADDR in the address map of NS's ruleset?
cl_element() { e2e_nsexec "$1" nft list map inet moat ep4 2>/dev/null | grep -qw "$2"; }
cl_no_element() { e2e_nsexec "$1" nft list map inet moat ep4 >/dev/null 2>&1 && ! cl_element "$@"; }

# cl_status_is NAME PYEXPR VALUE / cl_status_not - for wait_for.
cl_status_is() { [ "$(cl_status "$1" "$2")" = "$3" ]; }
cl_status_not() { ! cl_status_is "$@"; }

# cl_etcd_has KEY - does etcd hold KEY?
cl_etcd_has() { [ -n "$(cl_etcdctl get --keys-only "$1" 2>/dev/null)" ]; }

# cl_dockerd_b_start - a second dockerd, for node b, in ${E2E_NS}-b (made by the caller):
# directories under $E2E_DIR/b, socket $E2E_DIR/b/docker.sock, cgroup parent of its own;
# its containers, itself, its containerd and cgroups go at cleanup.
cl_dockerd_b_start() {
	local d=$E2E_DIR/b sock i
	sock=unix://$d/docker.sock
	mkdir -p "$d/data" "$d/exec"
	echo '{}' >"$d/daemon.json"
	nsenter --net=/var/run/netns/"${E2E_NS}-b" "$E2E_DOCKERD" --data-root "$d/data" \
		--exec-root "$d/exec" -H "$sock" --pidfile "$d/dockerd.pid" --storage-driver vfs \
		--config-file "$d/daemon.json" --cgroup-parent "/moat-e2e-${E2E_DIR##*.}-b" \
		--userland-proxy=false --log-level warn </dev/null >>"$d/dockerd.log" 2>&1 &
	CL_DOCKERD_B_PID=$!
	disown "$CL_DOCKERD_B_PID"
	e2e_on_exit "cl_dockerd_b_stop"
	for i in $(seq 200); do
		DOCKER_HOST=$sock "$E2E_DOCKER" version >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	tail -n 20 "$d/dockerd.log" >&2
	e2e_fail "dockerd b did not come up"
}

cl_dockerd_b_stop() {
	local sock=unix://$E2E_DIR/b/docker.sock ids c pid g=/moat-e2e-${E2E_DIR##*.}-b
	ids=$(DOCKER_HOST=$sock timeout 10 "$E2E_DOCKER" ps -aq 2>/dev/null) || ids=
	[ -n "$ids" ] && DOCKER_HOST=$sock timeout 30 "$E2E_DOCKER" rm -f $ids >/dev/null 2>&1
	cl_stop "${CL_DOCKERD_B_PID:-}"
	for c in $(find /sys/fs/cgroup/*"$g" -maxdepth 0 -type d 2>/dev/null); do
		for pid in $(find "$c" -name cgroup.procs -exec cat {} + 2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null
		done
	done
	sleep 0.2
	for c in $(find /sys/fs/cgroup/*"$g" -maxdepth 0 -type d 2>/dev/null); do
		find "$c" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	return 0
}
