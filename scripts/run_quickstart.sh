#!/usr/bin/env bash
# One command from a fresh clone to a trained, evaluated and exported model, offline:
# grey -> colour on photographs that scikit-image ships. About two minutes on a 2-core CPU
# after the install (it prints its estimate first and the time it took last).
# QUICKSTART_EPOCHS, QUICKSTART_CROPS, QUICKSTART_DIR and P2P_SKIP_INSTALL=1 shrink or redirect it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
OUT="${QUICKSTART_DIR:-./results/quickstart}"
EPOCHS="${QUICKSTART_EPOCHS:-4}"
CROPS="${QUICKSTART_CROPS:-40}"
TRAIN_PHOTOS=5  # the training photographs of src/dataset/quickstart_data.py, one step per crop
STEPS=$(( EPOCHS * CROPS * TRAIN_PHOTOS ))
# Measured by running this script on a 2-core AMD EPYC shared with other work (its last line
# prints the time taken: 1 min 55 s): the 64-px, ngf 32 model of configs/quickstart.yaml trained
# at 0.11 s/step (0.06 on the idle machine), and data, start-up, compilation, validation,
# evaluation and export took the other 30 s.
STEP_MS=110
OTHER_S=30
EXPECTED_S=$(( OTHER_S + STEPS * STEP_MS / 1000 ))
echo "== expected: about $(( (EXPECTED_S + 30) / 60 )) min after the install ($STEPS training steps at" \
     "$STEP_MS ms + ${OTHER_S} s, as measured on a 2-core CPU; the training prints its own time left)"
if [ "${P2P_SKIP_INSTALL:-0}" != "1" ]; then
    echo "== installing requirements"
    "$PYTHON" -m pip install --quiet -r requirements.txt -c constraints.txt
fi
START=$SECONDS
echo "== building the dataset"
"$PYTHON" -m src.dataset.quickstart_data build --out "$OUT/data" --crops "$CROPS" --size 72
echo "== training ($EPOCHS epochs, $STEPS steps; validation keeps the best generator)"
"$PYTHON" train.py --config_path configs/quickstart.yaml --train_data_dir "$OUT/data/train" \
    --val_data_dir "$OUT/data/test" --n_epochs $(( (EPOCHS + 1) / 2 )) --n_epochs_decay $(( EPOCHS / 2 )) \
    --ckpt_dir "$OUT/ckpt" --train_fakeimg_dir "$OUT/fake_img" --loss_show_dir "$OUT/loss_show"
BEST="$OUT/ckpt/Generator_best.ckpt"
BEST_RECORD=$("$PYTHON" -c 'import json, sys; print("epoch %(epoch)s, step %(step)s: validation %(metric)s %(value).4f"
    % json.load(open(sys.argv[1])))' "$OUT/ckpt/Generator_best.json")
echo "== evaluating the best generator ($BEST_RECORD) on the held-out photographs"
"$PYTHON" eval.py --val_data_dir "$OUT/data/test" --ckpt "$BEST" \
    --batch_size 4 --predict_dir "$OUT/predict" --report_dir "$OUT/eval"
echo "== exporting the MINDIR and translating the held-out inputs with it"
"$PYTHON" export.py --ckpt "$BEST" --file_name "$OUT/generator"
"$PYTHON" export.py --ckpt "$BEST" --file_name "$OUT/generator" --file_format ONNX
"$PYTHON" predict.py --mindir "$OUT/generator.mindir" --input_dir "$OUT/data/test_inputs" \
    --predict_dir "$OUT/predict_mindir"
"$PYTHON" -m src.dataset.quickstart_data picture --collages "$OUT/eval/collages" --out "$OUT/quickstart.png"
ELAPSED=$(( SECONDS - START ))
echo "== done in $(( ELAPSED / 60 )) min $(( ELAPSED % 60 )) s after the install (expected about" \
     "$(( EXPECTED_S / 60 )) min $(( EXPECTED_S % 60 )) s)"
echo "report:     $OUT/eval/report.pdf"
echo "pictures:   $OUT/quickstart.png, $OUT/eval/collages/, $OUT/loss_show/loss_curve.png"
echo "model:      $OUT/generator.mindir (translated images in $OUT/predict_mindir)"
echo "serve it:   bash scripts/run_serve.sh $OUT/generator.onnx 8000   (ONNX Runtime, faster than the MINDIR here; then open http://127.0.0.1:8000/)"
