#!/bin/sh
# bench/summarize.sh FILE - markdown tables from a `make bench` output:
# GEMM (red vs OpenBLAS GFLOPS, 1 and all threads) per SIMD path, and SVD times
# against LAPACK sgesvj, sgejsv and sgesdd.
set -eu
f=${1:?usage: bench/summarize.sh sweep-output.txt}
awk '
function kv(line, key,   re, s) { re = " " key "=[^ ]*"; if (match(" " line, re)) { s = substr(" " line, RSTART + length(key) + 2, RLENGTH - length(key) - 2); return s } return "" }
/^op=matmul_ratio/ {
    simd = kv($0, "simd"); t = kv($0, "threads");
    shape = kv($0, "m") "x" kv($0, "n") "x" kv($0, "k") " " kv($0, "trans");
    key = simd SUBSEP shape;
    if (!(key in seen)) { seen[key] = 1; order[++n] = key }
    cell[key, t] = sprintf("%s / %s / **%s**", kv($0, "red_gflops"), kv($0, "peer_gflops"), kv($0, "ratio"));
    if (t > maxt) maxt = t
}
/^op=svd impl=red/ { k = kv($0, "simd") SUBSEP kv($0, "m") "x" kv($0, "n") SUBSEP kv($0, "threads"); rs[k] = kv($0, "seconds"); re[k] = kv($0, "max_err"); sw[k] = kv($0, "sweeps"); if (!(k in sv)) { sv[k] = 1; sorder[++ns] = k } }
/^op=svd impl=lapack_sgesvj/ { k = kv($0, "simd") SUBSEP kv($0, "m") "x" kv($0, "n") SUBSEP kv($0, "threads"); js[k] = kv($0, "seconds"); je[k] = kv($0, "max_err"); jw[k] = kv($0, "sweeps") }
/^op=svd impl=lapack_sgejsv/ { k = kv($0, "simd") SUBSEP kv($0, "m") "x" kv($0, "n") SUBSEP kv($0, "threads"); xs[k] = kv($0, "seconds"); xe[k] = kv($0, "max_err") }
/^op=svd impl=lapack_sgesdd/ { k = kv($0, "simd") SUBSEP kv($0, "m") "x" kv($0, "n") SUBSEP kv($0, "threads"); ds[k] = kv($0, "seconds"); de[k] = kv($0, "max_err") }
END {
    print "GEMM, GFLOPS as red / OpenBLAS / **ratio** (m×n×k, product):\n";
    print "| path | shape | 1 thread | " maxt " threads |"; print "|---|---|---|---|";
    for (i = 1; i <= n; i++) { split(order[i], p, SUBSEP); print "| " p[1] " | " p[2] " | " cell[order[i], 1] " | " cell[order[i], maxt] " |" }
    print "\nSVD of an m×n Gaussian matrix with U, S, V (seconds, median of 3; max_err = max of residual and both orthogonality errors):\n";
    print "| path | m×n | threads | red s (sweeps) | sgesvj s (sweeps) | red/sgesvj time | sgejsv s | red/sgejsv time | sgesdd s | red max_err | sgesvj max_err | sgejsv max_err | sgesdd max_err |";
    print "|---|---|---|---|---|---|---|---|---|---|---|---|---|";
    for (i = 1; i <= ns; i++) { k = sorder[i]; split(k, p, SUBSEP);
        printf "| %s | %s | %s | %s (%s) | %s (%s) | %.2f× | %s | %.2f× | %s | %s | %s | %s | %s |\n", p[1], p[2], p[3], rs[k], sw[k], js[k], jw[k],
            (js[k] > 0 ? rs[k] / js[k] : 0), xs[k], (xs[k] > 0 ? rs[k] / xs[k] : 0), ds[k], re[k], je[k], xe[k], de[k] }
}' "$f"
