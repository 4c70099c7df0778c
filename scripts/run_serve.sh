#!/usr/bin/env bash
# Serve an exported model (MINDIR, or ONNX run by onnxruntime; its .json model card beside it)
# over HTTP in the foreground: the web page at http://127.0.0.1:PORT/, the API at /translate,
# its docs at /docs. Ctrl-C stops. ONNX Runtime served the quickstart's generator faster than
# MindSpore's MINDIR here (bench/RESULTS.md). Add --host 0.0.0.0 to serve colleagues on the
# network; see `python serve.py --help`.
USAGE="bash scripts/run_serve.sh MODEL [PORT] [serve.py flags...]   (MODEL: a .onnx or a .mindir)"
source "$(dirname "$0")/common.sh"
need_args $# 1
MODEL=$(abs_file "$1" MODEL) || exit 2
[ -f "$MODEL.json" ] || die_usage "MODEL $1 has no model card $1.json beside it; export.py writes it"
case "$MODEL" in
    *.onnx) FLAG=--onnx ;;
    *) FLAG=--mindir ;;
esac
PORT=8000
if [ $# -ge 2 ] && [[ "$2" != --* ]]; then
    non_negative_int "$2" PORT
    PORT=$2; shift
fi
shift
exec "$PYTHON" "$REPO_DIR/serve.py" "$FLAG" "$MODEL" --port "$PORT" "$@"
