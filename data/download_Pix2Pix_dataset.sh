#!/usr/bin/env bash
# Download and unpack a public pix2pix dataset into data/NAME (train/, val/, test/ of AB images).
USAGE="bash data/download_Pix2Pix_dataset.sh [cityscapes|night2day|edges2handbags|edges2shoes|facades|maps]"
NAME=${1:-}
case "$NAME" in
    cityscapes|night2day|edges2handbags|edges2shoes|facades|maps) ;;
    *) echo "error: unknown dataset '$NAME'" >&2; echo "usage: $USAGE" >&2; exit 2 ;;
esac
DEST="$(cd "$(dirname "$0")" && pwd)"
URL="http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/$NAME.tar.gz"
ARCHIVE="$DEST/$NAME.tar.gz"
echo "downloading $URL"
if ! curl --fail --location --connect-timeout 20 --retry 2 -o "$ARCHIVE.part" "$URL"; then
    rm -f "$ARCHIVE.part"
    echo "error: could not download $URL (offline, or the server is down); nothing was changed" >&2
    exit 1
fi
mv "$ARCHIVE.part" "$ARCHIVE"
tar -xzf "$ARCHIVE" -C "$DEST" && rm -f "$ARCHIVE"
echo "unpacked to $DEST/$NAME"
