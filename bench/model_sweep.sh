#!/bin/sh
# bench/model_sweep.sh - `red bench train`, `red bench infer` and `red bench
# distill` on the configs (a, b, c) at 1 and 2 threads, each followed in the
# same run by the PyTorch peer when python3-torch is installed, and ratio lines
# (red tok/s over PyTorch's).
#   sh bench/model_sweep.sh [RED_BINARY] [CONFIGS] [STEPS] [WHAT]
#   (defaults: ./red "a b c" 5 "train infer distill")
# Peers: train is ../shared/bench/torch_peer.py (the peer red is judged against,
# at red's vocabulary 512) when present, else bench/torch_model.py; infer is
# bench/torch_model.py (KV-cache decode like red's); distill is
# bench/torch_distill.py (the same LRC step). Each peer runs twice:
#   setup=best     as its fastest users run it: glibc malloc tunables so large
#                  tensors are not unmapped and page-faulted again every step,
#                  OpenBLAS's kernel for the CPU (SkylakeX on AVX-512, Haswell on
#                  AVX2), OpenBLAS's and torch's pools at the thread count;
#   setup=default  plain `python3 peer.py` (glibc's default allocator, OpenBLAS's
#                  own kernel choice, both unset from the environment: Debian's
#                  0.3.21 picks Haswell on Zen 5).
# The ratio that counts is against setup=best; both are printed with their setup.
RED=${1:-./red}
CONFIGS=${2:-"a b c"}
STEPS=${3:-5}
WHAT=${4:-"train infer distill"}
has() { case " $WHAT " in *" $1 "*) return 0;; esac; return 1; }
PY=/usr/bin/python3
HAVE_TORCH=0
if $PY -c "import torch" 2>/dev/null; then HAVE_TORCH=1; else echo "# python3-torch not installed: red only"; fi
TORCH_PEER=../shared/bench/torch_peer.py
[ -f "$TORCH_PEER" ] || TORCH_PEER=
CORE=Haswell; grep -qw avx512f /proc/cpuinfo 2>/dev/null && CORE=SkylakeX
BEST_ENV="GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736 OPENBLAS_CORETYPE=$CORE"
echo "# machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, $(date -u +%Y-%m-%d)"
echo "# peer setup=best: env $BEST_ENV, OPENBLAS_NUM_THREADS=OMP_NUM_THREADS=torch threads=T; setup=default: no env"
# Debian's torch calls whatever libblas.so.3 the alternatives system points at: the
# reference BLAS unless OpenBLAS is installed (libopenblas0-pthread), 10x slower
BLAS=$(readlink -f /usr/lib/$(uname -m)-linux-gnu/libblas.so.3 2>/dev/null || echo unknown)
echo "# peer BLAS: $BLAS"
case "$BLAS" in *openblas*) ;; *) echo "# WARNING: the peer is not on OpenBLAS (apt-get install libopenblas0-pthread): not its best";; esac
val() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
jval() { echo "$1" | sed -n "s/.*\"$2\": *\([0-9.eE+-]*\).*/\1/p"; }  # a number from torch_peer.py's JSON line
ratio() { echo "$1 $2" | awk '{ if ($2 > 0) printf "%.2f", $1 / $2; else printf "nan" }'; }

# peer SETUP THREADS CMD...: runs a peer in a setup, prints its line with the setup, sets PEER_TOKS
peer() {
  setup=$1; nt=$2; shift 2
  if [ "$setup" = best ]; then out=$(env $BEST_ENV OPENBLAS_NUM_THREADS=$nt OMP_NUM_THREADS=$nt "$@" 2>&1 | tail -1)
  else out=$(env -u OPENBLAS_CORETYPE -u GLIBC_TUNABLES OPENBLAS_NUM_THREADS=$nt OMP_NUM_THREADS=$nt "$@" 2>&1 | tail -1); fi
  echo "$out setup=$setup"
  PEER_TOKS=$(val "$out" tok_per_s); [ -n "$PEER_TOKS" ] || PEER_TOKS=$(val "$out" decode_tok_per_s)
  [ -n "$PEER_TOKS" ] || PEER_TOKS=$(jval "$out" tokens_per_s)
}

has train && for c in $CONFIGS; do
  for t in 1 2; do
    r=$($RED bench train --config $c --threads $t --steps $STEPS) || exit 1
    echo "$r"
    [ $HAVE_TORCH = 1 ] || continue
    for setup in best default; do
      if [ -n "$TORCH_PEER" ]; then peer $setup $t $PY $TORCH_PEER --mode train --config $c --threads $t --vocab 512 --steps $STEPS
      else peer $setup $t $PY bench/torch_model.py train --config $c --threads $t --steps $STEPS; fi
      echo "op=ratio what=train config=$c threads=$t setup=$setup red_over_torch=$(ratio "$(val "$r" tok_per_s)" "$PEER_TOKS")"
    done
  done
done
has infer && for c in $CONFIGS; do
  for t in 1 2; do
    for b in 1 16; do
      r=$($RED bench infer --config $c --threads $t --batch $b --gen 64) || exit 1
      echo "$r"
      [ $HAVE_TORCH = 1 ] || continue
      for setup in best default; do
        peer $setup $t $PY bench/torch_model.py infer --config $c --threads $t --batch $b --gen 64
        echo "op=ratio what=infer config=$c threads=$t batch=$b setup=$setup red_over_torch=$(ratio "$(val "$r" decode_tok_per_s)" "$PEER_TOKS")"
      done
    done
  done
done
has distill && for c in $CONFIGS; do
  for t in 1 2; do
    r=$($RED bench distill --config $c --threads $t --steps $STEPS) || exit 1
    echo "$r"
    [ $HAVE_TORCH = 1 ] || continue
    for setup in best default; do
      peer $setup $t sh -c "cd bench && exec $PY torch_distill.py --config $c --threads $t --steps $STEPS"
      echo "op=ratio what=distill config=$c threads=$t setup=$setup red_over_torch=$(ratio "$(val "$r" tok_per_s)" "$PEER_TOKS")"
    done
  done
done
