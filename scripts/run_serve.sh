#!/usr/bin/env bash
# Serve an exported MINDIR (its .json model card beside it) over HTTP in the foreground:
# the web page at http://127.0.0.1:PORT/, the API at /translate, its docs at /docs. Ctrl-C stops.
# Add --host 0.0.0.0 to serve colleagues on the network; see `python serve.py --help`.
USAGE="bash scripts/run_serve.sh MINDIR [PORT] [serve.py flags...]"
source "$(dirname "$0")/common.sh"
need_args $# 1
MINDIR=$(abs_file "$1" MINDIR) || exit 2
[ -f "$MINDIR.json" ] || die_usage "MINDIR $1 has no model card $1.json beside it; export.py writes it"
PORT=8000
if [ $# -ge 2 ] && [[ "$2" != --* ]]; then
    non_negative_int "$2" PORT
    PORT=$2; shift
fi
shift
exec "$PYTHON" "$REPO_DIR/serve.py" --mindir "$MINDIR" --port "$PORT" "$@"
