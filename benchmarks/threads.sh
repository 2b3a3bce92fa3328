#!/bin/sh
# train_student@1's wall with torch's default thread count (threads_per_process: 0) vs 1,
# interleaved, 2 repeats each. Run in a workspace where `dvc repro refine@1` has run
# (a clone of this repo), e.g.:
#   git clone . /tmp/thr && (cd /tmp/thr && dvc repro refine@1)
#   LABEL=idle NICE=0 sh benchmarks/threads.sh /tmp/thr >> benchmarks/results/threads.txt
# Contended figure: the same while two `benchmarks.accuracy` streams ran (LABEL=contended,
# NICE=19, the streams' own niceness). Edits the workspace's params.yaml.
set -e
cd "$1"
export PYTHONWARNINGS=ignore::DeprecationWarning
for rep in 1 2; do
  for t in 0 1; do
    sed -i "s/^  threads_per_process: .*/  threads_per_process: $t/" params.yaml
    rm -rf models/gen1 dvclive/gen1
    s=$(date +%s.%N)
    nice -n "${NICE:-0}" python -m stages.train_student --gen 1 --manifest data/prepared/manifest.parquet \
      --refined data/gen1/refined.parquet --out models/gen1 --live-dir dvclive/gen1 > "/tmp/threads_${t}_${rep}.log" 2>&1
    e=$(date +%s.%N)
    echo "$LABEL threads_per_process=$t rep=$rep wall=$(python -c "print(round($e-$s,1))") s; $(grep 'torch threads' "/tmp/threads_${t}_${rep}.log")"
  done
done
