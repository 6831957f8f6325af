#!/bin/sh
# Install the Debian packages the controller, the emulation and the tests
# use.  Does nothing when every package is already installed.
set -eu
. "$(dirname "$0")/common.sh"

PACKAGES="openvswitch-switch mininet isc-dhcp-client udhcpc busybox dhcpcd5
iperf3 tcpdump ethtool arping iproute2 iputils-ping procps python3-venv
kea-admin kea-dhcp4-server"

require_root "installing Debian packages"
command -v apt-get >/dev/null 2>&1 ||
    die "apt-get not found: this setup supports Debian 12 (bookworm) only."

missing=""
for package in $PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
    case "$status" in
        *" installed") ;;
        *) missing="$missing $package" ;;
    esac
done
[ -z "$missing" ] && exit 0

echo "installing Debian packages:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null ||
    die "apt-get update failed; check the machine's package sources."
# Services must not start from package scripts: start-ovs.sh starts OVS in
# userspace mode, and kea and dhcpcd must not serve or run on this host.
# A policy-rc.d that returns 101 tells invoke-rc.d to start nothing.
policy=/usr/sbin/policy-rc.d
added_policy=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    added_policy=1
fi
status=0
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >/dev/null ||
    status=$?
[ -n "$added_policy" ] && rm -f "$policy"
[ "$status" -eq 0 ] || die "apt-get install failed for:$missing"
