#!/usr/bin/env bash
# Paper Table 1 (ResNet-101 ablations of DUC, Cityscapes val): train, test and score rows 1-8.
# Environment and --dry-run: see tools/paper/common.sh.
DATA_ROOT="${DATA_ROOT:-data/cityscapes}"
LISTS="${LISTS:-data_lists/cityscapes}"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ROWS=(table1_row1_baseline_ds8 table1_row2_baseline_ds4 table1_row3_duc_ds8_noaspp_noaug_cell1
      table1_row4_duc_ds8_aspp4_noaug_cell1 table1_row5_duc_ds8_aspp4_cell1 table1_row6_duc_ds4_aspp4_cell1
      table1_row7_duc_ds8_aspp6_cell1 table1_row8_duc_ds8_aspp6_cell2)
preflight "${ROWS[@]}"
plan_tests "${ROWS[@]}"
for name in "${ROWS[@]}"; do
    experiment "$name" test_full_image.cfg
done
table "${ROWS[@]}"
