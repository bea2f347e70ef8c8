#!/usr/bin/env bash
# tests/mpi_runs.sh RED DIR - data-parallel runs under Open MPI equal the
# single process: mpirun -np 1, 2 and 4 train and distill runs write the same
# files (cmp; the distillation log's wall time aside), a run stopped on 2
# ranks resumes on 4 to the same end, a batch the ranks cannot split is
# refused, and reproduce spread over 2 ranks writes the same results. RED is
# a `make MPI=1` binary; DIR holds a tiny model t/ and train.jsonl,
# corpus.txt (as .ci/run makes them). Small: a few seconds of compute.
set -euo pipefail
R=$1
T=$2
W=$(mktemp -d "$T/mpi.XXXXXX")
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1  # CI containers run as root
MPI=(mpirun --oversubscribe)

same() {  # every file of directory $1 equals $2's
    local f
    for f in $(cd "$1" && ls); do
        if [ "$f" = distill_log.json ]; then
            cmp <(grep -v '"wall_seconds"' "$1/$f") <(grep -v '"wall_seconds"' "$2/$f")
        else
            cmp "$1/$f" "$2/$f"
        fi
    done
}

# --answer-loss: sequences count different numbers of targets
TR=(train --data "$T/train.jsonl" --data "$T/corpus.txt" --tokens 4096 --dim 32 --layers 1 --heads 2 --ffn 64
    --seq 64 --batch 4 --save-every 8 --threads 1 --answer-loss)
"$R" "${TR[@]}" --out "$W/t" 2> /dev/null
for n in 1 2 4; do
    "${MPI[@]}" -np $n "$R" "${TR[@]}" --out "$W/t_np$n" 2> /dev/null
    same "$W/t" "$W/t_np$n"
done
echo "mpi: train on 1, 2, 4 ranks = one process"

DI=(distill --teacher "$T/t" --width 16 --init red --data "$T/corpus.txt" --data "$T/train.jsonl" --tokens 2048
    --batch 4 --seq 64 --calib-tokens 1024 --erank-tokens 512 --save-every 4 --log-every 1 --threads 1)
"$R" "${DI[@]}" --out "$W/d" 2> /dev/null
for n in 1 2 4; do
    "${MPI[@]}" -np $n "$R" "${DI[@]}" --out "$W/d_np$n" 2> /dev/null
    same "$W/d" "$W/d_np$n"
done
echo "mpi: distill on 1, 2, 4 ranks = one process"

"${MPI[@]}" -np 2 "$R" "${DI[@]}" --out "$W/d_cut" --stop-after 4 2> /dev/null
"${MPI[@]}" -np 4 "$R" "${DI[@]}" --out "$W/d_cut" --resume 2> /dev/null
for f in model.safetensors distill_state.bin distill_curve.jsonl; do cmp "$W/d/$f" "$W/d_cut/$f"; done
echo "mpi: distill stopped on 2 ranks, resumed on 4 = one process"

"$R" "${DI[@]}" --chain-each-sequence --out "$W/de" 2> /dev/null
"${MPI[@]}" -np 4 "$R" "${DI[@]}" --chain-each-sequence --out "$W/de_np4" 2> /dev/null
same "$W/de" "$W/de_np4"
if cmp -s "$W/d/model.safetensors" "$W/de/model.safetensors"; then
    echo "mpi: --chain-each-sequence changed nothing"; exit 1
fi
echo "mpi: distill chaining each sequence on 4 ranks = one process"

if "${MPI[@]}" -np 3 "$R" "${DI[@]}" --out "$W/d_np3" > "$W/np3.log" 2>&1; then
    echo "mpi: a batch of 4 was split over 3 ranks"; exit 1
fi
grep -q 'must split evenly' "$W/np3.log"

RP=(reproduce --quick --teacher "$T/t" --per-step 2 --choice 10 --inits lrc,red --threads 1)
"$R" "${RP[@]}" --out "$W/rep" 2> /dev/null
"${MPI[@]}" -np 2 "$R" "${RP[@]}" --out "$W/rep_np2" 2> /dev/null
cmp "$W/rep/results.json" "$W/rep_np2/results.json"
for f in "$W"/rep/runs/*/result.json; do cmp "$f" "$W/rep_np2/runs/${f#"$W"/rep/runs/}"; done
echo "mpi: reproduce with students on 2 ranks = one process"
rm -rf "$W"
