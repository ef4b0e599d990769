#!/bin/sh
# Installs the Debian packages Moat's build and tests need. Idempotent; needs root when
# something is missing.
set -e
PKGS="build-essential pkg-config clang libnftnl-dev libmnl-dev libnl-3-dev libnl-route-3-dev
libpcap-dev libjansson-dev libyaml-dev libcurl4-openssl-dev libmicrohttpd-dev docker.io busybox-static nftables
iproute2 iptables conntrack python3 procps libclang-rt-14-dev cppcheck graphviz
systemd man-db groff-base python3-yaml strace valgrind python3-scapy iperf3
socat curl chromium python3-websocket fonts-dejavu-core etcd-server etcd-client
podman netavark aardvark-dns crun runc catatonit slirp4netns docker-compose dnsmasq-base"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing packages and not root: apt-get install$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
# The tests run etcd in namespaces of their own; the service etcd-server installs would
# listen on the host's own port 2379 for nothing.
case " $missing " in *" etcd-server "*)
	systemctl disable --now etcd >/dev/null 2>&1 || true ;;
esac
