#!/usr/bin/env bash
# Paper Table 2 (HDC dilation schedules on the best ResNet-DUC, Cityscapes val).
# Environment and --dry-run: see tools/paper/common.sh.
DATA_ROOT="${DATA_ROOT:-data/cityscapes}"
LISTS="${LISTS:-data_lists/cityscapes}"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ROWS=(table2_no_dilation table2_dilation_conv table2_dilation_rf table2_dilation_bigger)
preflight "${ROWS[@]}"
plan_tests "${ROWS[@]}"
for name in "${ROWS[@]}"; do
    experiment "$name" test_full_image.cfg
done
table "${ROWS[@]}"
