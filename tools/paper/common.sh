#!/usr/bin/env bash
# Shared by tools/paper/*.sh (sourced, not run). Environment (defaults in brackets):
#   GPUS        devices, e.g. 0,1,2,3 [0,1,2,3]; test.py uses the first one; -1 = the CPU
#   DATA_ROOT   dataset root the lists are relative to [data/cityscapes; kitti.sh: data/kitti_road;
#               voc.sh: data/VOCdevkit/VOC2012]
#   LISTS       folder of the test list val.lst / train.lst [data_lists/<dataset>]
#   RESULTS     test outputs go to RESULTS/<experiment> [results/paper]
#   PYTHON      interpreter [python]
#   DRY_RUN=1 or --dry-run: check the prerequisites, then print the commands instead of running them
#   REHEARSE=1  run every step (lists, train, test, score, table) on DATA_ROOT with the tiny backbone,
#               a few images, one epoch, on the CPU, into REHEARSAL [rehearsal/<script>]: minutes
# Every run first checks what it needs (tools/preflight.py: dataset folders, lists, initial weights,
# GPUs, disk), makes the lists the dataset folder gives and stops with one line per missing item.
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
REHEARSE="${REHEARSE:-0}"
CONFIGS=configs/train
if [[ "$REHEARSE" == 1 ]]; then
    REHEARSAL="${REHEARSAL:-rehearsal/$(basename "$0" .sh)}"
    ASKED_GPUS="$GPUS"  # checked for the real run, reported as a note
    GPUS=-1
    RESULTS="$REHEARSAL/results"
    CONFIGS="$REHEARSAL/configs"
fi
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

# preflight NAME...: everything the training configs NAME... and the test need, before any work
# (tools/preflight.py); stops the script with one line per missing item. REHEARSE=1: writes the
# rehearsal configs and short lists into $REHEARSAL and tests on its short list.
preflight() {
    local -a rehearse=()
    if [[ "$REHEARSE" == 1 ]]; then
        rehearse=(--rehearse "$REHEARSAL")
    fi
    if ! "$PYTHON" tools/preflight.py "$@" --data-root "$DATA_ROOT" --lists "$LISTS" --gpus "${ASKED_GPUS:-$GPUS}" \
            "${rehearse[@]}"; then
        if [[ "$DRY_RUN" != 1 ]]; then
            exit 2
        fi
        echo "(dry run: the commands below would run once the missing items are there)"
    fi
    if [[ "$REHEARSE" == 1 ]]; then
        LISTS="$REHEARSAL/lists"
    fi
}

# train NAME [ARGS...]: python train.py $CONFIGS/NAME.cfg on $GPUS with $DATA_ROOT (and ARGS).
# Each run writes into a new folder <model_dir>/<save_model_prefix>/<YYYY_MM_DD_HH:MM:SS>/.
train() {
    local name="$1"
    shift
    local -a devices=(--set "env.gpus=$GPUS" --set env.use_cpu=False)
    if [[ "$GPUS" == -1 ]]; then
        devices=(--set env.use_cpu=True)
    fi
    run "$PYTHON" train.py "$CONFIGS/$name.cfg" "${devices[@]}" \
        --set "data.data_dir=$DATA_ROOT" --set "data.label_dir=$DATA_ROOT" "$@"
}

# run_dir NAME: the newest run folder of configs/train/NAME.cfg (a placeholder with DRY_RUN=1).
run_dir() {
    if [[ "$DRY_RUN" == 1 ]]; then
        printf '%s\n' "<newest run folder of $1>"
    else
        "$PYTHON" tools/paper_table.py run-dir "$CONFIGS/$1.cfg"
    fi
}

# plan_tests NAME...: the test.py arguments of each experiment's last checkpoint and network
# (tools/paper_table.py test-args, one call for all), kept in TEST_ARGS[NAME].
declare -A TEST_ARGS=()
plan_tests() {
    local planned name line
    local -a configs=()
    for name in "$@"; do
        configs+=("$CONFIGS/$name.cfg")
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
    local -a rehearsal=()
    if [[ "$REHEARSE" == 1 ]]; then
        rehearsal=(--set data.result_shape=None)  # each image at its own size, whatever the dataset's
    fi
    run "$PYTHON" test.py "configs/test/$test_config" "${checkpoint[@]}" --set "model.model_dir=$folder" \
        --set "model.gpu=$TEST_GPU" \
        --set "model.result_dir=$RESULTS/$name" --set "data.image_list=$LISTS/val.lst" \
        --set "data.test_img_dir=$DATA_ROOT" --set "data.gt_dir=$DATA_ROOT" "${rehearsal[@]}" --quiet
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
    if [[ "$REHEARSE" == 1 && "$DRY_RUN" != 1 ]]; then
        echo "rehearsal done: every step ran on $DATA_ROOT (tiny backbone, 1 epoch, a few images, CPU), so its"
        echo "numbers mean nothing; the real run is the same command without REHEARSE=1 (outputs: $REHEARSAL)"
    fi
}
