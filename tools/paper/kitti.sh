#!/usr/bin/env bash
# Paper section 4.2 (KITTI road): train the 2-class ResNet-101-DUC, segment LISTS/val.lst and
# score URBAN_ROAD MaxF / AP (the paper's 96.41 is the test server's; run on a held-out split).
# Environment and --dry-run: see tools/paper/common.sh.
DATA_ROOT="${DATA_ROOT:-data/kitti_road}"
LISTS="${LISTS:-data_lists/kitti}"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

preflight kitti_road
plan_tests kitti_road
experiment kitti_road test_kitti_road.cfg
table kitti_road
