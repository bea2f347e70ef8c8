#!/bin/sh
# bench/sweep.sh - the standard sweep behind `make bench`. Prints key=value lines
# (see `red bench --help`); with OpenBLAS installed each line is followed by the
# peer's line and an op=*_ratio line (ratio > 1: red is faster).
# Like with like: the AVX-512 build against OpenBLAS's AVX-512 kernel
# (OPENBLAS_CORETYPE=SkylakeX), the AVX2 build against its Haswell kernel.
# Environment: SIMD_PATH (this build's path), BENCH_BIN (binary to run),
#              QUICK=1 for a short sweep.
set -eu
NPROC=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
THREADS="1"; [ "$NPROC" -gt 1 ] && THREADS="1 $NPROC"
SQUARES="64 128 256 512 1024 2048"
SVDS="256 512 1024"
[ "${QUICK:-0}" = 1 ] && SQUARES="64 256 1024" && SVDS="256"

echo "# red bench sweep: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ //') ($NPROC cores)"

sweep() {  # $1 = binary, $2 = OpenBLAS core type or ""
    bin=$1
    if [ -n "$2" ]; then export OPENBLAS_CORETYPE=$2; echo "# OPENBLAS_CORETYPE=$2"; fi
    # OpenBLAS starts its worker threads at load, and they spin while red's
    # measurement runs first, taking its second core (512^3 on 2 threads fell to
    # 34 GFLOPS in 3 runs of 10). Started with one thread, OpenBLAS creates them
    # when the peer's own measurement sets its thread count
    # (openblas_set_num_threads); its figures were the same either way.
    export OPENBLAS_NUM_THREADS=1
    echo "# OPENBLAS_NUM_THREADS=1 at load; openblas_set_num_threads(T) before each peer measurement"
    for t in $THREADS; do
        "$bin" bench peak --threads "$t"
        for s in $SQUARES; do "$bin" bench matmul --m "$s" --n "$s" --k "$s" --threads "$t"; done
        for tr in nn nt tn; do
            "$bin" bench matmul --m 4096 --k 256 --n 768 --trans $tr --threads "$t"
            "$bin" bench matmul --m 4096 --k 768 --n 256 --trans $tr --threads "$t"
            [ "${QUICK:-0}" = 1 ] || "$bin" bench matmul --m 2048 --k 2048 --n 8192 --trans $tr --threads "$t"
        done
        for s in $SVDS; do "$bin" bench svd --m "$s" --n "$s" --threads "$t"; done
        [ "${QUICK:-0}" = 1 ] || "$bin" bench svd --m 4096 --n 256 --threads "$t"  # tall, as the RED init's spectra
    done
    unset OPENBLAS_CORETYPE || true
}

case "${SIMD_PATH:-}" in
avx512)
    sweep "$BENCH_BIN" SkylakeX
    # and the AVX2 path of the same code, against OpenBLAS's AVX2 kernel
    target=binary; case "$BENCH_BIN" in *red-bench-peer) target=peer;; esac
    bin2=$(make -s --no-print-directory SIMD=avx2 print-bench-bin)
    make -s --no-print-directory SIMD=avx2 "$target" >/dev/null
    sweep "$bin2" Haswell ;;
avx2) sweep "$BENCH_BIN" Haswell ;;
*) sweep "$BENCH_BIN" "" ;;
esac
