#!/usr/bin/env bash
# One command from a fresh clone to a trained, evaluated and exported model, offline:
# grey -> colour on photographs that scikit-image ships. About ten minutes on a 2-core CPU.
# QUICKSTART_EPOCHS, QUICKSTART_CROPS, QUICKSTART_DIR and P2P_SKIP_INSTALL=1 shrink or redirect it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
OUT="${QUICKSTART_DIR:-./results/quickstart}"
EPOCHS="${QUICKSTART_EPOCHS:-12}"
CROPS="${QUICKSTART_CROPS:-40}"
if [ "${P2P_SKIP_INSTALL:-0}" != "1" ]; then
    echo "== installing requirements"
    "$PYTHON" -m pip install --quiet -r requirements.txt
fi
echo "== building the dataset"
"$PYTHON" -m src.dataset.quickstart_data build --out "$OUT/data" --crops "$CROPS" --size 72
echo "== training ($EPOCHS epochs)"
"$PYTHON" train.py --config_path configs/quickstart.yaml --train_data_dir "$OUT/data/train" \
    --val_data_dir "$OUT/data/test" --n_epochs $(( (EPOCHS + 1) / 2 )) --n_epochs_decay $(( EPOCHS / 2 )) \
    --ckpt_dir "$OUT/ckpt" --train_fakeimg_dir "$OUT/fake_img" --loss_show_dir "$OUT/loss_show"
echo "== evaluating on the held-out photographs (the checkpoint records the model flags)"
"$PYTHON" eval.py --val_data_dir "$OUT/data/test" --ckpt "$OUT/ckpt/Generator_$EPOCHS.ckpt" \
    --batch_size 4 --predict_dir "$OUT/predict" --report_dir "$OUT/eval"
echo "== exporting the MINDIR and translating the held-out inputs with it"
"$PYTHON" export.py --ckpt "$OUT/ckpt/Generator_$EPOCHS.ckpt" --file_name "$OUT/generator"
"$PYTHON" export.py --ckpt "$OUT/ckpt/Generator_$EPOCHS.ckpt" --file_name "$OUT/generator" --file_format ONNX
"$PYTHON" predict.py --mindir "$OUT/generator.mindir" --input_dir "$OUT/data/test_inputs" \
    --predict_dir "$OUT/predict_mindir"
"$PYTHON" -m src.dataset.quickstart_data picture --collages "$OUT/eval/collages" --out "$OUT/quickstart.png"
echo "== done"
echo "report:     $OUT/eval/report.pdf"
echo "pictures:   $OUT/quickstart.png, $OUT/eval/collages/, $OUT/loss_show/loss_curve.png"
echo "model:      $OUT/generator.mindir (translated images in $OUT/predict_mindir)"
echo "serve it:   bash scripts/run_serve.sh $OUT/generator.onnx 8000   (ONNX Runtime, faster than the MINDIR here; then open http://127.0.0.1:8000/)"
