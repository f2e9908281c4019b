#!/usr/bin/env bash
# Paper section 4.3 (PASCAL VOC 2012, ResNet-152-DUC): pre-train on train_aug, fine-tune on
# trainval_aug, segment and score LISTS/val.lst (the paper's 83.1 is the test server's).
# Environment and --dry-run: see tools/paper/common.sh.
DATA_ROOT="${DATA_ROOT:-data/VOCdevkit/VOC2012}"
LISTS="${LISTS:-data_lists/voc}"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

preflight voc_pretrain_train_aug voc_finetune_trainval_aug
plan_tests voc_finetune_trainval_aug
train voc_pretrain_train_aug
pretrained="$(run_dir voc_pretrain_train_aug)"
experiment voc_finetune_trainval_aug test_voc.cfg --set "model.load_model_dir=$pretrained"
table voc_finetune_trainval_aug
