#!/bin/bash
# The control socket against other users of the node: moatd refuses a socket directory that
# someone else owns or may write to; the socket is 0660, group moat; a peer is privileged
# when root or in the group moat, primary or supplementary, as the kernel saw it at connect()
# (SO_PEERGROUPS), also when moatd runs in its own PID namespace (a container) where
# /proc/PID of a client names nobody; a stranger who can connect may read, not change.
#
#   root namespace: clients, as nobody (65534) with setpriv, with and without gid 4242
#        |  $D/run/moat.sock (0755 directory)
#   netns moat-XXXXXX + own mount and PID namespace (/proc of its own):
#        moatd --runtime none, /etc/group bind-mounted with "moat:x:4242:"
set -eu
. "$(dirname "$0")/lib.sh"

MOATD=$E2E_BUILD/moatd
MOAT=$E2E_BUILD/moat
[ -x "$MOATD" ] && [ -x "$MOAT" ] || e2e_fail "build first (MOAT_BUILD=DIR for make B=DIR)"
command -v setpriv >/dev/null || e2e_fail "needs setpriv (util-linux)"

e2e_setup
D=$E2E_DIR
chmod 0755 "$D"			# nobody must reach the socket
mkdir -m 0755 "$D/run" "$D/policies"
SOCK=$D/run/moat.sock
GID=4242
{ grep -v '^moat:' /etc/group; echo "moat:x:$GID:"; } >"$D/group"
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)

# moatd_in_pidns SOCKET - moatd in the test's network namespace and in a new mount and PID
# namespace; sets MOATD_PID (moatd itself) and OUTER_PID (unshare, which waits for it).
moatd_in_pidns() {
	nsenter --net=/var/run/netns/"$E2E_NS" unshare --mount --propagation private --pid \
		--fork --mount-proc sh -c 'mount --bind "$0" /etc/group && exec "$@"' "$D/group" \
		"$MOATD" --config /dev/null --runtime none --policy-dir "$D/policies" \
		--socket "$1" --state-dir "$D/state" --resync-interval 0 \
		</dev/null >>"$D/moatd.log" 2>&1 &
	OUTER_PID=$!
	MOATD_PID=
	wait_for 50 eval 'MOATD_PID=$(cat /proc/$OUTER_PID/task/$OUTER_PID/children 2>/dev/null) &&
		[ -n "$MOATD_PID" ]' || true
}
stop_moatd() {
	[ -n "${MOATD_PID:-}" ] && kill -TERM "$MOATD_PID" 2>/dev/null
	[ -n "${OUTER_PID:-}" ] && { e2e_wait_gone "$OUTER_PID" 50 || kill -KILL "$OUTER_PID"; }
	[ -n "${OUTER_PID:-}" ] && wait "$OUTER_PID" 2>/dev/null
	MOATD_PID= OUTER_PID=
	return 0
}
e2e_on_exit stop_moatd

# refused DIR WORDS - moatd with its socket in DIR exits 1 and says WORDS; no socket there.
refused() {
	local dir=$1 words=$2 rc=0
	: >"$D/moatd.log"
	moatd_in_pidns "$dir/moat.sock"
	e2e_wait_gone "$OUTER_PID" 100 || { cat "$D/moatd.log" >&2; e2e_fail "moatd serves in $dir"; }
	wait "$OUTER_PID" || rc=$?
	MOATD_PID= OUTER_PID=
	[ "$rc" = 1 ] || { cat "$D/moatd.log" >&2; e2e_fail "moatd in $dir: exit $rc, want 1"; }
	grep -q -- "$words" "$D/moatd.log" || { cat "$D/moatd.log" >&2; e2e_fail "no '$words'"; }
	[ ! -e "$dir/moat.sock" ] || e2e_fail "a socket was made in $dir"
	e2e_log "ok: refused $dir ($words)"
}

mkdir -m 0777 "$D/open"
chmod 0777 "$D/open"
refused "$D/open" "is writable by everyone (mode 0777)"
mkdir -m 0775 "$D/grp"
chmod 0775 "$D/grp"
refused "$D/grp" "is writable by its group (mode 0775)"
mkdir -m 0755 "$D/theirs"
chown 65534:65534 "$D/theirs"
refused "$D/theirs" "is owned by uid 65534, not root"

: >"$D/moatd.log"
moatd_in_pidns "$SOCK"
wait_for 100 "$MOAT" --socket "$SOCK" status >/dev/null ||
	{ cat "$D/moatd.log" >&2; e2e_fail "moatd did not answer"; }
[ "$(stat -c '%a %g %F' "$SOCK")" = "660 $GID socket" ] ||
	e2e_fail "socket is $(stat -c '%a %g %F' "$SOCK"), want 660 $GID socket"
e2e_log "ok: socket 0660, group moat ($GID)"
[ -z "$(find "$D/run" -name '.moat-*')" ] || e2e_fail "a private bind directory was left behind"

moat_as() { "$@" "$MOAT" --socket "$SOCK" "${MOAT_ARGS[@]}"; }
MOAT_ARGS=(mode monitor)
expect_fail "nobody without the group cannot connect" moat_as "${NOBODY[@]}"
expect_ok "nobody with the supplementary group moat changes the mode" \
	moat_as setpriv --reuid=65534 --regid=65534 --groups=65534,$GID
"$MOAT" --socket "$SOCK" status | grep -q '^mode  *monitor' || e2e_fail "mode is not monitor"
MOAT_ARGS=(mode enforce)
expect_ok "nobody with the primary group moat changes the mode" \
	moat_as setpriv --reuid=65534 --regid=$GID --clear-groups
"$MOAT" --socket "$SOCK" status | grep -q '^mode  *enforce' || e2e_fail "mode is not enforce"

# A socket opened to everyone (as an operator might, for read-only use): anyone may read,
# only root and the group may change.
chmod 0666 "$SOCK"
MOAT_ARGS=(status)
expect_ok "a stranger reads the status" eval 'moat_as "${NOBODY[@]}" >/dev/null'
MOAT_ARGS=(mode monitor)
out=$(moat_as "${NOBODY[@]}" 2>&1) && e2e_fail "a stranger changed the mode: $out"
case "$out" in *"permission denied: changes need root or the moat group"*) ;;
*) e2e_fail "a stranger's change: '$out'" ;; esac
e2e_log "ok: a stranger's change is refused"
expect_ok "supplementary moat still may" moat_as setpriv --reuid=65534 --regid=65534 \
	--groups=$GID
stop_moatd
[ ! -e "$SOCK" ] || e2e_fail "moatd left its socket behind"
e2e_log "PASS"
