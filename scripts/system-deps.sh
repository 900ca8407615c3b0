#!/bin/sh
# System packages the test suite needs: Debian chromium (browser test) and dataset-fashion-mnist
# (the demo run and the Fashion-MNIST reader). Installed with apt when missing and we are root.
set -eu
missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium"
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || missing="$missing dataset-fashion-mnist"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages:$missing"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
else
    echo "missing system packages:$missing -- install them with: sudo apt-get install$missing" >&2
    exit 1
fi
