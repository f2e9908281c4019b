#!/usr/bin/env bash
# Paper Table 3 (ResNet-101 fine + coarse, ResNet-152 in two phases: 10 epochs learning BN, then
# 20 with BN fixed), Cityscapes val. Rows 1-2 are sec412.sh's deconvolution and table2.sh's
# Dilation-bigger. Environment and --dry-run: see tools/paper/common.sh.
DATA_ROOT="${DATA_ROOT:-data/cityscapes}"
LISTS="${LISTS:-data_lists/cityscapes}"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

TESTED=(table3_r101_duc_hdc_fine_coarse table3_r152_deconv_phase2 table3_r152_duc_hdc_phase2
        table3_r152_duc_hdc_fine_coarse_phase2)
preflight table3_r101_duc_hdc_fine_coarse table3_r152_deconv_phase1_bn table3_r152_deconv_phase2 \
    table3_r152_duc_hdc_phase1_bn table3_r152_duc_hdc_phase2 table3_r152_duc_hdc_fine_coarse_phase1_bn \
    table3_r152_duc_hdc_fine_coarse_phase2
plan_tests "${TESTED[@]}"
experiment table3_r101_duc_hdc_fine_coarse test_full_image.cfg
for base in table3_r152_deconv table3_r152_duc_hdc table3_r152_duc_hdc_fine_coarse; do
    train "${base}_phase1_bn"
    phase1="$(run_dir "${base}_phase1_bn")"
    experiment "${base}_phase2" test_full_image.cfg --set "model.load_model_dir=$phase1"
done
table "${TESTED[@]}"
