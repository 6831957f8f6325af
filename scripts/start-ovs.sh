#!/bin/sh
# Start Open vSwitch with the userspace datapath unless it is running.
# The kernel module is not needed: every bridge of this project uses
# datapath_type=netdev.
set -eu
. "$(dirname "$0")/common.sh"

OVS_CTL=/usr/share/openvswitch/scripts/ovs-ctl

require_root "starting Open vSwitch"
[ -x "$OVS_CTL" ] ||
    die "$OVS_CTL not found; run scripts/install-debian-packages.sh first."

if ovs-vsctl --timeout=5 show >/dev/null 2>&1 &&
        ovs-appctl -t ovs-vswitchd version >/dev/null 2>&1; then
    exit 0
fi

# ovs-ctl warns that it cannot load the kernel module and carries on.
"$OVS_CTL" start --no-ovs-vswitchd --system-id=random >/dev/null 2>&1 ||
    die "ovsdb-server failed to start; see /var/log/openvswitch/."
"$OVS_CTL" start --no-ovsdb-server >/dev/null 2>&1 ||
    die "ovs-vswitchd failed to start; see /var/log/openvswitch/."
ovs-vsctl --timeout=5 show >/dev/null ||
    die "Open vSwitch started but ovs-vsctl cannot reach it."
echo "Open vSwitch is running (userspace datapath)"
