#!/bin/sh
# bench/model_sweep.sh - `red bench train`, `red bench infer` and `red bench
# distill` on the configs (a, b, c) at 1 and 2 threads, each followed in the
# same run by the PyTorch peer (bench/torch_model.py, bench/torch_distill.py)
# when python3-torch is installed, and a ratio line (red tok/s over PyTorch's).
#   sh bench/model_sweep.sh [RED_BINARY] [CONFIGS] [STEPS] [WHAT]
#   (defaults: ./red "a b c" 5 "train infer distill"; distill uses the first config
#   given, b in the issue)
RED=${1:-./red}
CONFIGS=${2:-"a b c"}
STEPS=${3:-5}
WHAT=${4:-"train infer distill"}
has() { case " $WHAT " in *" $1 "*) return 0;; esac; return 1; }
PY=/usr/bin/python3
HAVE_TORCH=0
if $PY -c "import torch" 2>/dev/null; then HAVE_TORCH=1; else echo "# python3-torch not installed: red only"; fi
val() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
echo "# machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, $(date -u +%Y-%m-%d)"
has train && for c in $CONFIGS; do
  for t in 1 2; do
    r=$($RED bench train --config $c --threads $t --steps $STEPS) || exit 1
    echo "$r"
    if [ $HAVE_TORCH = 1 ]; then
      p=$($PY bench/torch_model.py train --config $c --threads $t --steps $STEPS)
      echo "$p"
      echo "op=ratio what=train config=$c threads=$t red_over_torch=$(echo "$(val "$r" tok_per_s) $(val "$p" tok_per_s)" | awk '{printf "%.2f", $1/$2}')"
    fi
  done
done
has infer && for c in $CONFIGS; do
  for t in 1 2; do
    for b in 1 16; do
      r=$($RED bench infer --config $c --threads $t --batch $b --gen 64) || exit 1
      echo "$r"
      if [ $HAVE_TORCH = 1 ]; then
        p=$($PY bench/torch_model.py infer --config $c --threads $t --batch $b --gen 64)
        echo "$p"
        echo "op=ratio what=infer config=$c threads=$t batch=$b red_over_torch=$(echo "$(val "$r" decode_tok_per_s) $(val "$p" decode_tok_per_s)" | awk '{printf "%.2f", $1/$2}')"
      fi
    done
  done
done
if has distill; then
  c=$(echo $CONFIGS | cut -d' ' -f1)
  for t in 1 2; do
    r=$($RED bench distill --config $c --threads $t --steps $STEPS) || exit 1
    echo "$r"
    if [ $HAVE_TORCH = 1 ]; then
      p=$(cd bench && $PY torch_distill.py --config $c --threads $t --steps $STEPS)
      echo "$p"
      echo "op=ratio what=distill config=$c threads=$t red_over_torch=$(echo "$(val "$r" tok_per_s) $(val "$p" tok_per_s)" | awk '{printf "%.2f", $1/$2}')"
    fi
  done
fi
