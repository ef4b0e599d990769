#!/bin/bash
# Installing and operating, without root: the systemd unit verifies; the man pages render
# without warnings and cover every command and flag; the bash completion completes every
# command `moat --help` lists and every flag of `moatd --help`; every command answers --help;
# moatd.conf holds every key with its default and parses; the DaemonSet is valid YAML with the
# unit's capabilities; the Dockerfile's packages exist; the policy examples check and their
# matrices say what their comments say; `make install` installs what it should.
# MOAT_BUILD=DIR tests the binaries of `make B=DIR` (default build/). SECTION=pattern runs the
# sections whose name contains pattern.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
B=${MOAT_BUILD:-build}
case "$B" in /*) ;; *) B=$ROOT/$B ;; esac
MOAT=$B/moat MOATD=$B/moatd
EX=policy/examples
T=$(mktemp -d /tmp/moat-deploy.XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0 section=""

fail() { echo "FAIL [$section] $*"; fails=$((fails + 1)); }
ok() { echo "ok   [$section] $*"; }
# expect DESCRIPTION CMD... - ok when CMD succeeds.
expect() { local d=$1; shift; if "$@"; then ok "$d"; else fail "$d"; fi; }
want() { case "$section" in *"${SECTION:-}"*) return 0 ;; esac; return 1; }

[ -x "$MOAT" ] && [ -x "$MOATD" ] || { echo "deploy: build first (no $MOAT or $MOATD)" >&2; exit 1; }

# A python3 with PyYAML (Debian's python3-yaml), for the DaemonSet.
PY=
for p in /usr/bin/python3 python3; do
	command -v "$p" >/dev/null && "$p" -c 'import yaml' 2>/dev/null && { PY=$p; break; }
done

# commands_of TEXT - the first words of the lines after "Commands:" up to a blank line.
commands_of() { awk '/^Commands:/ { on = 1; next } on && NF == 0 { on = 0 } on { print $1 }'; }

# Every command and the subcommands of every command group `moat X --help` lists.
moat_commands() { "$MOAT" --help | commands_of; }
moat_groups() {	# "group sub" lines: a "Commands:" list, or "Usage: moat GROUP SUB ..." lines
	local c
	for c in $(moat_commands); do
		{
			"$MOAT" "$c" --help 2>/dev/null | commands_of
			"$MOAT" "$c" --help 2>/dev/null | sed -n "s/^\(Usage:\)\? *moat $c \([a-z]\+\)\( .*\)\?$/\2/p"
		} | sort -u | sed "s/^/$c /"
	done
}
"$MOATD" --config /dev/null --help >"$T/moatd.help" 2>&1
moatd_flags() { awk '$1 ~ /^--/ { print $1 }' "$T/moatd.help"; }

# ---------------------------------------------------------------------------------------------
section=help
if want; then
	expect "moat --help" "$MOAT" --help >/dev/null
	expect "moat -h" "$MOAT" -h >/dev/null
	expect "moatd --help" "$MOATD" --config /dev/null --help >/dev/null
	for c in $(moat_commands); do
		for h in --help -h; do
			out=$("$MOAT" "$c" $h 2>/dev/null) && [ -n "$out" ] && ok "moat $c $h" ||
				fail "moat $c $h: exit status not 0 or nothing on stdout"
		done
	done
	while read -r g s; do
		for h in --help -h; do
			out=$("$MOAT" "$g" "$s" $h 2>/dev/null) && [ -n "$out" ] && ok "moat $g $s $h" ||
				fail "moat $g $s $h: exit status not 0 or nothing on stdout"
		done
	done < <(moat_groups)
fi

# ---------------------------------------------------------------------------------------------
section=completion
if want; then
	# complete WORDS... - what the completion offers for the last word (may be empty).
	complete_words() {
		bash -c '. "$1"; shift
			COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=()
			if [ "$1" = moatd ]; then _moatd; else _moat; fi
			printf "%s\n" "${COMPREPLY[@]}"' _ "$ROOT/deploy/moat.bash-completion" "$@" 2>&1
	}
	has() { grep -qx -- "$1" <<<"$2"; }
	got=$(complete_words moat "")
	for c in $({ moat_commands; printf '%s\n' flows alerts learn graph; } | sort -u); do
		has "$c" "$got" && ok "moat <TAB> offers $c" || fail "moat <TAB> does not offer $c"
	done
	while read -r g s; do
		has "$s" "$(complete_words moat "$g" "")" && ok "moat $g <TAB> offers $s" ||
			fail "moat $g <TAB> does not offer $s"
	done < <(moat_groups)
	got=$(complete_words moatd "")
	for f in $(moatd_flags); do
		has "$f" "$got" && ok "moatd <TAB> offers $f" || fail "moatd <TAB> does not offer $f"
	done
	for f in $got; do
		moatd_flags | grep -qx -- "$f" || fail "moatd <TAB> offers $f, which moatd lacks"
	done
	expect "moat status -o <TAB> offers json" has json "$(complete_words moat status -o "")"
	mkdir -p "$T/c/pols" && touch "$T/c/pols/web.yaml" "$T/c/eps.yaml"
	expect "moat policy matrix -p <TAB> completes files" \
		has "$T/c/pols/web.yaml" "$(complete_words moat policy matrix -p "$T/c/pols/w")"
	expect "moat policy check -e <TAB> completes files" \
		has "$T/c/eps.yaml" "$(complete_words moat policy check -e "$T/c/ep")"
	expect "moat --socket PATH policy <TAB> offers check" \
		has check "$(complete_words moat --socket /x policy "")"
	expect "moatd --mode <TAB> offers monitor" has monitor "$(complete_words moatd --mode "")"
fi

# ---------------------------------------------------------------------------------------------
section=man
if want; then
	for p in deploy/man/*.[58]; do
		err=$(LC_ALL=C MANWIDTH=80 man --warnings -l "$p" 2>&1 >/dev/null)
		[ -z "$err" ] && ok "$p renders without warnings" || fail "$p: $err"
		LC_ALL=C MANWIDTH=80 man -l "$p" 2>/dev/null | awk -v p="$p" \
			'length > 80 { print "FAIL [man] " p ": line wider than 80: " $0; bad = 1 }
			 END { exit bad }' || fails=$((fails + 1))
	done
	for c in $(moat_commands); do
		grep -q "^\.SS moat $c\b" deploy/man/moat.8 && ok "moat.8 documents moat $c" ||
			fail "moat.8 has no section for moat $c"
	done
	while read -r g s; do
		grep -q "^\.SS moat $g $s\b" deploy/man/moat.8 && ok "moat.8 documents moat $g $s" ||
			fail "moat.8 has no section for moat $g $s"
	done < <(moat_groups)
	for f in $(moatd_flags); do
		grep -q "^\.B[IR]\? .*${f//-/\\\\-}\b" deploy/man/moatd.8 && ok "moatd.8 documents $f" ||
			fail "moatd.8 does not document $f"
	done
fi

# ---------------------------------------------------------------------------------------------
section=config
if want; then
	conf=deploy/moatd.conf
	sed -n 's/^# \([a-z-]*\) = \(.*\)$/\1 \2/p' $conf >"$T/keys"
	for f in $(moatd_flags); do
		k=${f#--}
		[ "$k" = config ] && continue
		grep -q "^$k " "$T/keys" && ok "moatd.conf has $k" || fail "moatd.conf lacks key $k"
	done
	while read -r k v; do
		moatd_flags | grep -qx -- "--$k" || fail "moatd.conf has $k, which moatd lacks"
		# Where --help states a default, the example must show the same.
		d=$(awk -v f="--$k" '$1 == f' "$T/moatd.help" |
			sed -n 's/.*(default \([^ )]*\)).*/\1/p')
		[ -z "$d" ] || [ "$d" = off ] || [ "$d" = "$v" ] || fail "moatd.conf: $k = $v, but --help says default $d"
	done <"$T/keys"
	sed -n 's/^# \([a-z-]* = .*\)$/\1/p' $conf >"$T/moatd.conf"
	expect "moatd.conf with every key uncommented parses" \
		"$MOATD" --config "$T/moatd.conf" --help >/dev/null
	echo "no-such-key = 1" >>"$T/moatd.conf"
	expect "moatd refuses an unknown key (the check above can fail)" \
		eval '! "$MOATD" --config "$T/moatd.conf" --help >/dev/null 2>&1'
fi

# ---------------------------------------------------------------------------------------------
section=systemd
# unit_caps - the unit's CapabilityBoundingSet, one name a line without CAP_, sorted.
unit_caps() {
	sed -n 's/^CapabilityBoundingSet=//p' deploy/moatd.service | tr ' ' '\n' | sed 's/^CAP_//' |
		grep . | sort
}
if want; then
	if command -v systemd-analyze >/dev/null; then
		# ExecStart must exist and Documentation= must resolve: our binary, our man pages.
		mkdir -p "$T/man/man5" "$T/man/man8"
		cp deploy/man/*.5 "$T/man/man5/" && cp deploy/man/*.8 "$T/man/man8/"
		sed "s|^ExecStart=/usr/local/sbin/moatd|ExecStart=$MOATD|" deploy/moatd.service \
			>"$T/moatd.service"
		out=$(cd "$T" && MANPATH=$T/man systemd-analyze verify ./moatd.service 2>&1)
		rc=$?
		[ $rc = 0 ] && [ -z "$out" ] && ok "systemd-analyze verify moatd.service" ||
			fail "systemd-analyze verify: $out"
		# verify only warns on a bad key: the empty-output check is what can fail.
		echo "ProtectHome=yse" >>"$T/moatd.service"
		out=$(cd "$T" && MANPATH=$T/man systemd-analyze verify ./moatd.service 2>&1)
		[ -n "$out" ] && ok "a broken unit is noticed" || fail "a broken unit verifies silently"
		sed "s|^ExecStart=.*|ExecStart=$MOATD|" deploy/moatd.service >"$T/moatd.service"
		lvl=$(cd "$T" && systemd-analyze security --offline=true --no-pager ./moatd.service 2>&1 |
			sed -n 's/.*Overall exposure level for moatd.service: \([0-9.]*\).*/\1/p')
		[ -n "$lvl" ] && awk -v l="$lvl" 'BEGIN { exit !(l <= 4.0) }' &&
			ok "systemd-analyze security: exposure $lvl (at most 4.0)" ||
			fail "systemd-analyze security: exposure '$lvl' above 4.0"
	else
		fail "systemd-analyze is missing (tests/deps.sh installs systemd)"
	fi
	grep -q '^ExecReload=.*-HUP \$MAINPID' deploy/moatd.service && ok "ExecReload sends SIGHUP" ||
		fail "ExecReload does not send SIGHUP"
	caps=$(unit_caps | tr '\n' ' ')
	[ "$caps" = "CHOWN NET_ADMIN SYS_ADMIN SYS_PTRACE " ] && ok "unit capabilities: $caps" ||
		fail "unit capabilities changed ($caps): update moatd.8, README, daemonset.yaml and this test"
	readme=$(sed -n 's/.*docker run .*//p; /--cap-add/p' README.md | grep -o -- '--cap-add [A-Z_]*' |
		awk '{ print $2 }' | sort | tr '\n' ' ')
	[ "$readme" = "$caps" ] && ok "README's docker run has the unit's capabilities" ||
		fail "README's docker run adds '$readme', the unit has '$caps'"
	for c in $caps; do
		grep -q "CAP_$c" deploy/man/moatd.8 || fail "moatd.8 does not name CAP_$c"
	done
fi

# ---------------------------------------------------------------------------------------------
section=daemonset
if want; then
	if [ -z "$PY" ]; then
		fail "no python3 with PyYAML (tests/deps.sh installs python3-yaml)"
	else
		mkdir -p "$T/cm"
		"$PY" - deploy/daemonset.yaml "$T/cm" "$(unit_caps | tr '\n' ' ')" <<'EOF'
import sys, yaml
path, cmdir, caps = sys.argv[1], sys.argv[2], sorted(sys.argv[3].split())
docs = [d for d in yaml.safe_load_all(open(path)) if d]
bad = []
def check(cond, what):
    print(("ok   [daemonset] " if cond else "FAIL [daemonset] ") + what)
    if not cond: bad.append(what)
kinds = {d["kind"]: d for d in docs}
check(set(kinds) == {"Namespace", "ConfigMap", "DaemonSet"}, "documents: %s" % sorted(kinds))
ds = kinds["DaemonSet"]
check(ds["apiVersion"] == "apps/v1", "DaemonSet apiVersion apps/v1")
spec = ds["spec"]["template"]["spec"]
check(ds["spec"]["selector"]["matchLabels"].items() <= ds["spec"]["template"]["metadata"]["labels"].items(),
      "selector matches the template's labels")
check(spec.get("hostNetwork") is True, "hostNetwork")
check(spec.get("hostPID") is True, "hostPID")
c = spec["containers"][0]
sc = c["securityContext"]
check(sc.get("privileged") is False, "privileged: false")
check(sorted(sc["capabilities"]["add"]) == caps, "capabilities %s == the unit's %s" % (sc["capabilities"]["add"], caps))
check(sc["capabilities"].get("drop") == ["ALL"], "drops ALL others")
vols = {v["name"]: v for v in spec["volumes"]}
mounts = {m["mountPath"]: vols[m["name"]] for m in c["volumeMounts"]}
check(mounts.get("/var/run/docker.sock", {}).get("hostPath", {}).get("type") == "Socket", "runtime socket from the host")
cm = mounts.get("/etc/moat/policies", {}).get("configMap", {}).get("name")
check(cm == kinds["ConfigMap"]["metadata"]["name"], "/etc/moat/policies from the ConfigMap")
check("hostPath" in mounts.get("/var/lib/moat", {}), "/var/lib/moat from the host")
check(c["command"][0] == "/usr/sbin/moatd", "runs /usr/sbin/moatd (Dockerfile installs PREFIX=/usr)")
for k, v in kinds["ConfigMap"]["data"].items():
    check(k.endswith((".yaml", ".yml")), "ConfigMap key %s is read by moatd (*.yaml)" % k)
    open("%s/%s" % (cmdir, k), "w").write(v)
sys.exit(1 if bad else 0)
EOF
		[ $? = 0 ] || fails=$((fails + 1))
		expect "the ConfigMap's policies pass moat policy check" "$MOAT" policy check "$T/cm" >/dev/null
	fi
fi

# ---------------------------------------------------------------------------------------------
section=dockerfile
if want; then
	df=deploy/Dockerfile
	expect "Dockerfile builds on Debian bookworm" grep -q '^FROM debian:bookworm AS build' $df
	expect "Dockerfile installs with PREFIX=/usr" grep -q 'make .*PREFIX=/usr .*install' $df
	expect "the image has the control socket's group moat" \
		grep -q '^RUN groupadd --system .*moat$' $df
	# stage_pkgs N - the packages the Nth `apt-get install` of the Dockerfile names.
	stage_pkgs() {
		awk -v n="$1" '/apt-get install/ { k++ } k == n { print } /rm -rf/ && k == n { exit }' $df |
			tr ' \\&\t' '\n' | grep -E '^[a-z0-9][a-z0-9.+-]+$' |
			grep -vxE 'apt-get|install|rm|rf|y|no-install-recommends'
	}
	# owner FILE - the package that installed FILE (through /usr-merge symlinks too).
	owner() {
		local f
		for f in "$1" "$(readlink -f "$1")" "$(readlink -f "$1" | sed 's|^/usr/|/|')"; do
			dpkg -S "$f" 2>/dev/null | cut -d: -f1 | head -1 | grep . && return
		done
	}
	# in_stage N PKG - PKG is named in stage N, or is what a name there depends on directly
	# (libpcap-dev -> libpcap0.8-dev).
	for n in 1 2; do
		{ stage_pkgs $n; apt-cache depends --no-recommends --no-suggests $(stage_pkgs $n) 2>/dev/null |
			sed -n 's/^  Depends: \([^ :<>]*\).*/\1/p'; } | sort -u >"$T/stage$n"
	done
	in_stage() { grep -qx -- "$2" "$T/stage$1"; }
	# Every pkg-config module moatd builds with comes from a package of the build stage.
	for m in $(sed -n 's/^DAEMON_PKGS := //p' Makefile); do
		p=$(owner "$(pkg-config --path "$m")")
		in_stage 1 "${p:-?}" && ok "build stage installs $p ($m)" ||
			fail "build stage lacks ${p:-the package of} $m"
	done
	# Every library moatd and moat link with directly comes from a package of the image.
	for l in $(ldd "$MOATD" "$MOAT" | awk '$3 ~ /^\// { print $3 }' | sort -u); do
		readelf -d "$MOATD" "$MOAT" | grep -q "NEEDED.*\[${l##*/}\]" || continue
		p=$(owner "$l")
		[ "$p" = libc6 ] && continue
		in_stage 2 "${p:-?}" && ok "image installs $p (${l##*/})" ||
			fail "image lacks ${p:-the package of} ${l##*/}"
	done
	if [ -n "$(apt-cache pkgnames lib 2>/dev/null | head -1)" ]; then
		known=$(apt-cache show --no-all-versions $(stage_pkgs 1) $(stage_pkgs 2) 2>/dev/null |
			sed -n 's/^Package: //p')
		for p in $(stage_pkgs 1) $(stage_pkgs 2); do
			grep -qx -- "$p" <<<"$known" && ok "apt knows $p" || fail "apt does not know $p"
		done
	else
		echo "skip [dockerfile] no apt lists to check the package names against"
	fi
fi

# ---------------------------------------------------------------------------------------------
section=examples
if want; then
	for f in $EX/three-tier.yaml $EX/compose.yaml $EX/default-deny.yaml $EX/cluster-guardrails.yaml \
		$EX/baseline-default-deny.yaml $EX/egress-domains.yaml $EX/v1alpha1.yaml; do
		expect "moat policy check $f -e endpoints.yaml" "$MOAT" policy check "$f" -e $EX/endpoints.yaml >/dev/null
	done
	expect "moat policy check compose/policies" "$MOAT" policy check $EX/compose/policies >/dev/null
	# verdicts POLICIES... - "from to port verdict" lines of the matrix on the example ports.
	verdicts() {
		local a=() p
		for p in "$@"; do a+=(-p "$p"); done
		"$MOAT" policy matrix "${a[@]}" -e $EX/endpoints.yaml -o json --port 8080/tcp --port 9000/tcp \
			--port 5432/tcp --port 53/udp --port 9100/tcp --port 8000/tcp --port 6379/tcp |
			"${PY:-python3}" -c 'import json, sys
for v in json.load(sys.stdin)["verdicts"]: print(v["from"], v["to"], v["port"], v["verdict"])'
	}
	# assert_pairs NAME <<EOF lines "from to port verdict"
	assert_pairs() {
		local name=$1 from to port v got
		while read -r from to port v; do
			[ -z "$from" ] && continue
			got=$(awk -v f="$from" -v t="$to" -v p="$port" '$1 == f && $2 == t && $3 == p { print $4 }' "$T/$name")
			[ "$got" = "$v" ] && ok "$name: $from -> $to $port: $v" ||
				fail "$name: $from -> $to $port: want $v, got '${got:-nothing}'"
		done
	}
	verdicts $EX/three-tier.yaml >"$T/three-tier"
	assert_pairs three-tier <<'EOF'
monitoring/prometheus shop/web 8080/tcp allow
default/blog-frontend-1 shop/web 8080/tcp allow
shop/web shop/api 9000/tcp allow
shop/web shop/db 5432/tcp deny
shop/api shop/db 5432/tcp allow
shop/db shop/api 9000/tcp deny
shop/api shop/web 8080/tcp deny
monitoring/prometheus shop/api 9000/tcp deny
default/blog-backend-1 shop/api 9000/tcp deny
shop/web kube-system/coredns 53/udp allow
shop/api kube-system/coredns 53/udp allow
shop/db kube-system/coredns 53/udp allow
shop/db kube-system/coredns 5432/tcp deny
shop/db default/blog-redis-1 6379/tcp deny
monitoring/prometheus shop/db 9100/tcp allow
monitoring/prometheus shop/api 9100/tcp allow
default/blog-backend-1 shop/db 9100/tcp deny
kube-system/coredns monitoring/prometheus 8080/tcp allow
EOF
	verdicts $EX/compose.yaml >"$T/compose"
	assert_pairs compose <<'EOF'
default/blog-frontend-1 default/blog-backend-1 8000/tcp allow
default/blog-redis-1 default/blog-backend-1 8000/tcp deny
shop/web default/blog-backend-1 8000/tcp deny
default/blog-backend-1 default/blog-redis-1 6379/tcp allow
default/blog-frontend-1 default/blog-redis-1 6379/tcp allow
default/blog-frontend-1 default/blog-backend-1 6379/tcp deny
EOF
	v=$("$MOAT" policy explain -p $EX/compose.yaml -e $EX/endpoints.yaml -o json \
		--from default/blog-frontend-1 --to default/blog-redis-1 --port 6379/tcp |
		"${PY:-python3}" -c 'import json, sys; print(json.load(sys.stdin)["verdict"])')
	[ "$v" = violation ] && ok "compose: frontend -> redis is a monitor-mode violation" ||
		fail "compose: frontend -> redis: want violation, got '$v'"
	verdicts $EX/default-deny.yaml >"$T/default-deny"
	assert_pairs default-deny <<'EOF'
shop/web shop/api 9000/tcp deny
shop/web kube-system/coredns 53/udp deny
monitoring/prometheus shop/db 9100/tcp deny
kube-system/coredns monitoring/prometheus 9100/tcp allow
default/blog-frontend-1 default/blog-backend-1 8000/tcp allow
EOF
	# default-deny adds nothing to three-tier, whose policies select every pod of shop.
	verdicts $EX/default-deny.yaml $EX/three-tier.yaml >"$T/both"
	cmp -s "$T/both" "$T/three-tier" && ok "default-deny + three-tier == three-tier" ||
		fail "default-deny + three-tier differs from three-tier alone"
fi

# ---------------------------------------------------------------------------------------------
section=install
if want; then
	D=$T/dest
	if make -s --no-print-directory B="$B" DESTDIR="$D" install >"$T/install.log" 2>&1; then
		(cd "$D" && find . \( -type f -o -type l \) | sort) >"$T/files"
		for f in usr/local/sbin/moatd usr/local/bin/moat usr/local/share/man/man8/moatd.8 \
			usr/local/share/man/man8/moat.8 usr/local/share/man/man5/moat-policy.5 \
			usr/local/share/bash-completion/completions/moat \
			usr/local/share/bash-completion/completions/moatd \
			usr/local/lib/systemd/system/moatd.service etc/moat/moatd.conf \
			usr/local/share/doc/moat/examples/three-tier.yaml \
			usr/local/share/doc/moat/examples/endpoints.yaml \
			usr/local/share/doc/moat/examples/compose/docker-compose.yml \
			usr/local/share/doc/moat/examples/compose/policies/shop.yaml \
			$(cd web && ls | sed 's|^|usr/local/share/moat/web/|'); do
			grep -qx "./$f" "$T/files" && ok "installs /$f" || fail "does not install /$f"
		done
		# moatd serves the UI from where make install puts it unless told otherwise
		grep -q -- '--web-root .*(default /usr/local/share/moat/web)' "$T/moatd.help" &&
			ok "moatd's default --web-root is the installed one" ||
			fail "moatd's default --web-root is not /usr/local/share/moat/web"
		expect "creates /etc/moat/policies" test -d "$D/etc/moat/policies"
		expect "the installed unit starts the installed moatd" \
			grep -qx 'ExecStart=/usr/local/sbin/moatd' "$D/usr/local/lib/systemd/system/moatd.service"
		echo "mode = monitor" >>"$D/etc/moat/moatd.conf"
		make -s --no-print-directory B="$B" DESTDIR="$D" SYSTEMDUNITDIR=/lib/systemd/system \
			install >>"$T/install.log" 2>&1
		expect "a second install keeps the operator's moatd.conf" \
			grep -qx 'mode = monitor' "$D/etc/moat/moatd.conf"
		expect "SYSTEMDUNITDIR places the unit" test -f "$D/lib/systemd/system/moatd.service"
	else
		fail "make install failed: $(tail -5 "$T/install.log")"
	fi
fi

echo "deploy: $fails failed"
[ "$fails" -eq 0 ]
