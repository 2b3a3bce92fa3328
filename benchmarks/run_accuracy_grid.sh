#!/bin/sh
# The accuracy grid in priority order, as two streams run side by side (2 cores), each
# process with one torch thread (OMP_NUM_THREADS=1; the library sets no thread count).
# Each stream appends to its own JSON file (no two writers on one file); the table is
# rendered from their merge (benchmarks/results/accuracy.json).
# Run from the repository root: PATH=/tmp/venv1/bin:$PATH sh benchmarks/run_accuracy_grid.sh
export PYTHONWARNINGS=ignore::DeprecationWarning OMP_NUM_THREADS=1
L=benchmarks/results
ABL=no_input_noise,no_dropout_droppath,hard_labels,no_balance,same_size,rules_off
(
  nice -n 19 python -m benchmarks.accuracy --fractions 0.02 --seeds 0 1 2 --generations 3 --ablations none --out $L/accuracy_a.json > $L/log_acc_a1_base002.txt 2>&1
  nice -n 19 python -m benchmarks.accuracy --fractions 0.05 --seeds 0 1 2 --generations 3 --ablations none --out $L/accuracy_a.json > $L/log_acc_a2_base005.txt 2>&1
  nice -n 19 python -m benchmarks.accuracy --fractions 0.02 --seeds 1 --generations 3 --ablations $ABL --no-baseline --out $L/accuracy_a.json > $L/log_acc_a3_abl_s1.txt 2>&1
) &
(
  nice -n 19 python -m benchmarks.accuracy --fractions 0.02 --seeds 0 1 2 --generations 3 --ablations no_noise_at_all --no-baseline --out $L/accuracy_b.json > $L/log_acc_b1_nonoise.txt 2>&1
  nice -n 19 python -m benchmarks.accuracy --fractions 0.02 --seeds 0 --generations 3 --ablations $ABL --no-baseline --out $L/accuracy_b.json > $L/log_acc_b2_abl_s0.txt 2>&1
) &
wait
# Second batch (after the above): seeds 3 and 4 of both baselines, one stream each.
# python -m benchmarks.accuracy --fractions 0.02 --seeds 3 4 --generations 3 --ablations none --out $L/accuracy_c.json
# python -m benchmarks.accuracy --fractions 0.05 --seeds 3 4 --generations 3 --ablations none --out $L/accuracy_d.json

# Third batch (second session, 19:38–21:25 UTC, idle machine apart from these streams):
# the single ablations on the remaining seeds at 2%, and every ablation at 5%, one seed per
# command so that a stopped stream leaves whole seeds. Records in accuracy_e..h.json.
# ALL=no_noise_at_all,$ABL
# stream e: 0.02 seeds 2 and 4 ($ABL); 0.02 seed 3 (no_noise_at_all);
#           0.05 seeds 0 1 (no_noise_at_all,no_input_noise); 0.05 seed 2 (no_noise_at_all,no_input_noise,no_dropout_droppath)
# stream f: 0.02 seed 3 ($ABL); 0.02 seed 4 (no_noise_at_all);
#           0.05 seeds 0 1 (no_dropout_droppath,hard_labels,no_balance,same_size,rules_off); 0.05 seed 2 (hard_labels,no_balance,same_size,rules_off)
# then streams g and h: 0.05 seed 3 and seed 4 ($ALL), e.g.
# nice -n 19 python -m benchmarks.accuracy --fractions 0.05 --seeds 3 --generations 3 --ablations $ALL --no-baseline --out $L/accuracy_g.json
