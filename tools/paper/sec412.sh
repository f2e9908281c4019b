#!/usr/bin/env bash
# Paper section 4.1.2: the bigger patch (880x880, batch 1 per GPU on 4 GPUs) and the
# deconvolution decoders (x8; x2 then x4), Cityscapes val.
# Environment and --dry-run: see tools/paper/common.sh.
DATA_ROOT="${DATA_ROOT:-data/cityscapes}"
LISTS="${LISTS:-data_lists/cityscapes}"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ROWS=(sec412_bigger_patch_duc sec412_deconv_one_step sec412_deconv_two_step)
preflight "${ROWS[@]}"
plan_tests "${ROWS[@]}"
for name in "${ROWS[@]}"; do
    experiment "$name" test_full_image.cfg
done
table "${ROWS[@]}"
