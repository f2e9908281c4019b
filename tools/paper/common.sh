#!/usr/bin/env bash
# Shared by tools/paper/*.sh (sourced, not run). Environment (defaults in brackets):
#   GPUS        devices, e.g. 0,1,2,3 [0,1,2,3]; test.py uses the first one; -1 = the CPU
#   DATA_ROOT   dataset root the lists are relative to [data/cityscapes; kitti.sh: data/kitti_road;
#               voc.sh: data/VOCdevkit/VOC2012]
#   LISTS       folder of the test list val.lst / train.lst [data_lists/<dataset>]
#   RESULTS     test outputs go to RESULTS/<experiment> [results/paper]
#   PYTHON      interpreter [python]
#   DRY_RUN=1 or --dry-run: print the commands instead of running them
# Run from anywhere; commands run in the repository root (relative paths as in the configs).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
GPUS="${GPUS:-0,1,2,3}"
RESULTS="${RESULTS:-results/paper}"
PYTHON="${PYTHON:-python}"
DRY_RUN="${DRY_RUN:-0}"
for argument in "$@"; do
    case "$argument" in
        --dry-run) DRY_RUN=1 ;;
        *) echo "error: unknown argument $argument (only --dry-run)" >&2; exit 2 ;;
    esac
done
TEST_GPU="${GPUS%%,*}"

# run CMD...: print the command; run it unless DRY_RUN=1.
run() {
    printf '+'
    printf ' %q' "$@"
    printf '\n'
    if [[ "$DRY_RUN" != 1 ]]; then
        "$@"
    fi
}

# train NAME [ARGS...]: python train.py configs/train/NAME.cfg on $GPUS with $DATA_ROOT (and ARGS).
# Each run writes into a new folder <model_dir>/<save_model_prefix>/<YYYY_MM_DD_HH:MM:SS>/.
train() {
    local name="$1"
    shift
    local -a devices=(--set "env.gpus=$GPUS" --set env.use_cpu=False)
    if [[ "$GPUS" == -1 ]]; then
        devices=(--set env.use_cpu=True)
    fi
    run "$PYTHON" train.py "configs/train/$name.cfg" "${devices[@]}" \
        --set "data.data_dir=$DATA_ROOT" --set "data.label_dir=$DATA_ROOT" "$@"
}

# run_dir NAME: the newest run folder of configs/train/NAME.cfg (a placeholder with DRY_RUN=1).
run_dir() {
    if [[ "$DRY_RUN" == 1 ]]; then
        printf '%s\n' "<newest run folder of $1>"
    else
        "$PYTHON" tools/paper_table.py run-dir "configs/train/$1.cfg"
    fi
}

# plan_tests NAME...: the test.py arguments of each experiment's last checkpoint and network
# (tools/paper_table.py test-args, one call for all), kept in TEST_ARGS[NAME].
declare -A TEST_ARGS=()
plan_tests() {
    local planned name line
    local -a configs=()
    for name in "$@"; do
        configs+=("configs/train/$name.cfg")
    done
    planned="$("$PYTHON" tools/paper_table.py test-args "${configs[@]}")"
    while IFS= read -r line; do
        TEST_ARGS["${line%%$'\t'*}"]="${line#*$'\t'}"
    done <<< "$planned"
}

# evaluate NAME TEST_CONFIG: test.py on the last checkpoint of NAME's newest run (network planned by
# plan_tests) with the test list of $LISTS; writes $RESULTS/NAME (score/, metrics.json).
evaluate() {
    local name="$1" test_config="$2" folder
    local -a checkpoint
    IFS=$'\t' read -r -a checkpoint <<< "${TEST_ARGS[$name]}"
    folder="$(run_dir "$name")"
    run "$PYTHON" test.py "configs/test/$test_config" "${checkpoint[@]}" --set "model.model_dir=$folder" \
        --set "model.gpu=$TEST_GPU" \
        --set "model.result_dir=$RESULTS/$name" --set "data.image_list=$LISTS/val.lst" \
        --set "data.test_img_dir=$DATA_ROOT" --set "data.gt_dir=$DATA_ROOT" --quiet
}

# experiment NAME TEST_CONFIG [TRAIN ARGS...]: train, then test and score.
experiment() {
    local name="$1" test_config="$2"
    shift 2
    train "$name" "$@"
    evaluate "$name" "$test_config"
}

# table NAME...: the paper's numbers next to the measured ones.
table() {
    run "$PYTHON" tools/paper_table.py table --results "$RESULTS" "$@"
}
