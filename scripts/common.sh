# Shared helpers for the setup scripts; source it, do not run it.

die() {
    echo "error: $*" >&2
    exit 1
}

require_root() {
    [ "$(id -u)" -eq 0 ] ||
        die "$1 needs root (Open vSwitch and Mininet manage kernel" \
            "network state); run it again as root, for example with sudo."
}
