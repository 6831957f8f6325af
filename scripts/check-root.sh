#!/bin/sh
# Stop with one sentence when the integration tests cannot run as this user.
set -eu
. "$(dirname "$0")/common.sh"
require_root "$1"
