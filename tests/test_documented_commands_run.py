"""Every documented ``python SCRIPT ...`` command (tests/test_documented_commands.py finds them in the
README's and docs/'s code blocks and the scripts' ``--help`` examples) RUNS: in a sandbox laid out
as the docs assume (tests/documented_sandbox.py), as written, with its placeholders substituted
and, where it would take minutes or needs what this machine lacks (a GPU, the real data, ImageNet
weights), the small settings of its entry in :data:`RUNS`. Each run checks its exit status and
what it produced. A documented command without an entry, or an entry matching no documented
command, fails :func:`test_every_documented_command_has_one_entry`.
"""
import os
import re
import sys
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import pytest

from documented_checks import (Check, bench_json, bench_table, checkpoint_file, checkpoint_of, claims_report,
                              dataset_files, demo_outputs, exported, image_results, list_results, lists_of,
                              metrics_json, bench_eval_report, no_gpu_message, paper_rows, png_file,
                              precision_table, preflight_missing, report_of, selftest_table, stdout_has,
                              symbols_written, worker_lines, write_gluoncv_pspnet)
from documented_sandbox import Ran, Sandbox
from test_documented_commands import COMMANDS

#: small settings of a tiny_duc_hdc training on the 64x128 synthetic images: one epoch, 64x64 crops
TINY_TRAINING = "--set model.num_epochs=1 --set data.crop_shape=64,64 --set data.random_bound=8,8"
#: a paper experiment (ResNet-101/152, ImageNet weights, GPUs) as a CPU tiny_duc_hdc run on the synthetic set
PAPER_ON_CPU = ("--set env.use_cpu=True --set env.kv_store=local --set network.preset=tiny_duc_hdc "
                "--set model.pretrained=None --set data.batch_size=2 --set data.num_workers=0 "
                "--set data.scale_factors=1 " + TINY_TRAINING)
#: the released test config on the 64x128 synthetic images (it resizes to 1024x2048 otherwise)
SMALL_TEST = "--set data.test_shape=64,128 --set data.result_shape=64,128"
#: the benchmark at the tiny preset, one 64x128 run, a 128^3 GEMM peak (4096^3 otherwise); every variant is a
#: process of its own (~10 s of imports each at load 10): the main section with its reference pair only
SMALL_BENCH = "--preset tiny_duc_hdc --warmup 0 --gemm-size 128"
MAIN_PAIR = "--main-variants gluon,module"
#: the quick demo's run folder and its config (``@{PATTERN}``: the newest match, as the docs' ``newest``)
DEMO_RUN = "@{demo_output/model/demo_duc_hdc/2*/}"
DEMO_CONFIG = "@{demo_output/model/demo_duc_hdc/2*/train_*.cfg}"


@dataclass(frozen=True)
class Entry:
    """How one documented command runs here.

    ``subs``: (documented text, text run) replacements in order, each of which must occur
    (placeholders, and long settings made small); ``append``: options added; ``why``: the
    reason for each change; ``cwd``: the sandbox folder it runs in; ``needs``: commands that
    run first (their outputs are its inputs); ``status``: the exit status the docs state;
    ``check``: what it must have produced; ``prepare``: writes an input first; ``runs_as``: the
    documented command that is the same invocation (an option at its default), whose run it shares.
    """
    why: str
    check: Check
    subs: Tuple[Tuple[str, str], ...] = ()
    append: str = ""
    cwd: str = "."
    needs: Tuple[str, ...] = ()
    status: int = 0
    prepare: Optional[Callable[[Sandbox], None]] = None
    runs_as: Optional[str] = None


RUNS: Dict[str, Entry] = {
    "python tools/demo.py": Entry(
        "--quick: the 5-minute demo in seconds (2+2 images of 64x128, one epoch)", demo_outputs, append="--quick"),
    "python tools/demo.py --out OUT": Entry(
        "OUT = demo_output, the default of --out: the same command as `python tools/demo.py`, whose run it is",
        demo_outputs, subs=(("OUT", "demo_output"),), append="--quick", runs_as="python tools/demo.py"),
    "python tools/gpu_selftest.py": Entry(
        "no GPU here: it must end with its one-line message and exit 2, as docs/COMPAT.md says",
        no_gpu_message, status=2),
    "python tools/gpu_selftest.py --cpu-contexts 2 --preset tiny_duc_hdc --size 32": Entry(
        "as written", selftest_table),
    "python tools/bench.py --shapes 1024x2048,512x1024 --runs 5 --sections main,levers,sliding,train": Entry(
        "64x128, 1 run, tiny preset, the main section's reference pair, 64x64 training crops", bench_table,
        subs=(("1024x2048,512x1024", "64x128"), ("--runs 5", "--runs 1")),
        append=f"{SMALL_BENCH} {MAIN_PAIR} --train-crop 64x64"),
    "python tools/bench.py --shapes 512x1024 --runs 5 --sections precision --precision-images 4      --calibration-images 4 --trained RUN/train_<time>.cfg:RUN/demo_duc_hdc:6 --trained-shape 256x512": Entry(
        "RUN = the quick demo's run folder (its one epoch: :1); 64x128, 1 run, 1 image each, tiny preset",
        precision_table, needs=("python tools/demo.py",),
        subs=(("512x1024", "64x128"), ("--runs 5", "--runs 1"), ("--precision-images 4", "--precision-images 1"),
              ("--calibration-images 4", "--calibration-images 1"),
              ("RUN/train_<time>.cfg:RUN/demo_duc_hdc:6", f"{DEMO_CONFIG}:{DEMO_RUN}demo_duc_hdc:1"),
              ("256x512", "64x128")), append=SMALL_BENCH + " --precision-backends none"),
    "python tools/bench.py --shapes 512x1024 --runs 5 --sections precision --precision-images 4      --calibration-images 4 --trained RUN/train_<time>.cfg:RUN/r101_ft2:18 --trained-shape 256x512": Entry(
        "RUN = the r101_ft2 run (trained below at 64x64 crops, epochs 1..3: :3); 64x128, 1 run, 1 image each",
        precision_table, needs=("python train.py \"$RUN\"train_*.cfg --set model.save_model_prefix=r101_ft2      --set model.load_model_dir=\"$RUN\" --set model.load_model_prefix=r101_ft      --set model.load_epoch=12 --set model.num_epochs=18 --set model.lr=0.01",),
        subs=(("512x1024", "64x128"), ("--runs 5", "--runs 1"), ("--precision-images 4", "--precision-images 1"),
              ("--calibration-images 4", "--calibration-images 1"),
              ("RUN/train_<time>.cfg:RUN/r101_ft2:18", "@{R101/r101_ft2/2*/train_*.cfg}:@{R101/r101_ft2/2*/}r101_ft2:3"),
              ("256x512", "64x128")), append=SMALL_BENCH + " --precision-backends none"),
}
RUNS.update({
    "python tools/demo.py [--out demo_output] [--released PREFIX [--released-epoch 20]] [--quick] [--seed 0]": Entry(
        "the optional parts given: the released-format checkpoint of models/ as PREFIX (its epoch 20), --quick",
        demo_outputs, subs=(("[--out demo_output]", "--out demo_output"),
                            ("[--released PREFIX [--released-epoch 20]]", "--released models/ResNet_DUC_HDC_CityScapes --released-epoch 20"),
                            ("[--quick]", "--quick"), ("[--seed 0]", "--seed 0"))),
    "python train.py \"$DEMO\"train_*.cfg --set network.preset=resnet101_duc_hdc_released      --set network.aspp=None --set network.dilation_schedule=None --set network.cell_width=None      --set model.model_dir=R101 --set model.save_model_prefix=r101_synthetic      --set model.num_epochs=6 --set model.lr=0.05 --set data.batch_size=2": Entry(
        "DEMO = the quick demo's run folder (2 images, 64x64 crops); the tiny preset for the ResNet-101 (one "
        "epoch of this chain took 52 s; the chain of run folders, loads and epochs is the same); 1 epoch, not 6",
        checkpoint_of("R101/r101_synthetic/2*/", "r101_synthetic", 1), needs=("python tools/demo.py",),
        subs=(("\"$DEMO\"", DEMO_RUN), ("network.preset=resnet101_duc_hdc_released", "network.preset=tiny_duc_hdc"),
              ("--set model.num_epochs=6", "--set model.num_epochs=1"))),
    "python train.py \"$RUN\"train_*.cfg --set model.save_model_prefix=r101_ft      --set model.load_model_dir=\"$RUN\" --set model.load_model_prefix=r101_synthetic      --set model.load_epoch=6 --set model.num_epochs=12 --set model.lr=0.02": Entry(
        "RUN = the r101_synthetic run; its epoch 1 loaded, up to epoch 2 (not 6 -> 12)",
        checkpoint_of("R101/r101_ft/2*/", "r101_ft", 2),
        needs=("python train.py \"$DEMO\"train_*.cfg --set network.preset=resnet101_duc_hdc_released      --set network.aspp=None --set network.dilation_schedule=None --set network.cell_width=None      --set model.model_dir=R101 --set model.save_model_prefix=r101_synthetic      --set model.num_epochs=6 --set model.lr=0.05 --set data.batch_size=2",),
        subs=(("\"$RUN\"", "@{R101/r101_synthetic/2*/}"), ("load_epoch=6", "load_epoch=1"), ("num_epochs=12", "num_epochs=2"))),
    "python train.py \"$RUN\"train_*.cfg --set model.save_model_prefix=r101_ft2      --set model.load_model_dir=\"$RUN\" --set model.load_model_prefix=r101_ft      --set model.load_epoch=12 --set model.num_epochs=18 --set model.lr=0.01": Entry(
        "RUN = the r101_ft run; its epoch 2 loaded, up to epoch 3 (not 12 -> 18)",
        checkpoint_of("R101/r101_ft2/2*/", "r101_ft2", 3),
        needs=("python train.py \"$RUN\"train_*.cfg --set model.save_model_prefix=r101_ft      --set model.load_model_dir=\"$RUN\" --set model.load_model_prefix=r101_synthetic      --set model.load_epoch=6 --set model.num_epochs=12 --set model.lr=0.02",),
        subs=(("\"$RUN\"", "@{R101/r101_ft/2*/}"), ("load_epoch=12", "load_epoch=2"), ("num_epochs=18", "num_epochs=3"))),
    "python test.py CONFIG --set inference.backend=openvino --set inference.precision=bf16": Entry(
        "CONFIG = the demo's test config, pointed at the quick demo's run (epoch 1) and its own result folder",
        list_results("results/openvino-bf16"), needs=("python tools/demo.py",),
        subs=(("CONFIG", "configs/test/demo_synthetic.cfg"),),
        append=f"--set model.model_dir={DEMO_RUN} --set model.model_epoch=1 --set model.result_dir=results/openvino-bf16 "
               + SMALL_TEST),
    "python test.py CONFIG --set inference.backend=openvino --set inference.precision=int8-bf16      --set inference.dilated_conv_form=taps": Entry(
        "CONFIG as above",
        list_results("results/openvino-int8-bf16"), needs=("python tools/demo.py",),
        subs=(("CONFIG", "configs/test/demo_synthetic.cfg"),),
        append=f"--set model.model_dir={DEMO_RUN} --set model.model_epoch=1 --set model.result_dir=results/openvino-int8-bf16 "
               + SMALL_TEST),
    "python tools/bench.py --shapes 512x1024 --runs 3 --sections main --out bench-main-backends.json": Entry(
        "64x128, 1 run, tiny preset, the reference pair", bench_json("bench-main-backends.json"),
        subs=(("512x1024", "64x128"), ("--runs 3", "--runs 1")), append=f"{SMALL_BENCH} {MAIN_PAIR}"),
    "python tools/bench.py --shapes 512x1024 --runs 3 --sections main --peer-python /work/peer-venv/bin/python      --main-variants gluon,openvino-fp32,openvino-int8,openvino-phases-fp32,peer-openvino-fp32,peer-openvino-bf16,peer-openvino-default,peer-nncf-int8": Entry(
        "no peer venv here: the project's own interpreter as the peer (it lacks nncf: peer-nncf-int8 is reported "
        "unavailable, as tests/experiments/test_bench_peers.py checks); 64x128, 1 run, tiny preset; one variant "
        "of each kind", bench_table,
        subs=(("512x1024", "64x128"), ("--runs 3", "--runs 1"), ("/work/peer-venv/bin/python", sys.executable),
              ("gluon,openvino-fp32,openvino-int8,openvino-phases-fp32,peer-openvino-fp32,peer-openvino-bf16,"
               "peer-openvino-default,peer-nncf-int8", "gluon,openvino-fp32,peer-openvino-fp32,peer-nncf-int8")),
        append=SMALL_BENCH),
    "python tools/bench.py --preset tiny_duc_hdc --shapes 256x512 --runs 1 --warmup 0 --sections precision      --precision-images 4 --calibration-images 4 --trained \"$(ls \"$DEMO\"train_*.cfg):${DEMO}demo_duc_hdc:6\"      --trained-shape 256x512 --precision-backends all": Entry(
        "DEMO = the quick demo's run (its one epoch: :1); 64x128, 1 image each, one backend (each is minutes here)",
        precision_table, needs=("python tools/demo.py",),
        subs=(("256x512", "64x128"), ("--precision-images 4", "--precision-images 1"),
              ("--calibration-images 4", "--calibration-images 1"),
              ("\"$(ls \"$DEMO\"train_*.cfg):${DEMO}demo_duc_hdc:6\"", f"{DEMO_CONFIG}:{DEMO_RUN}demo_duc_hdc:1"),
              ("--precision-backends all", "--precision-backends openvino-int8")), append="--gemm-size 128"),
    "python tools/bench.py --preset tiny_duc_hdc --shapes 256x512 --runs 1 --warmup 0 --sections precision      --precision-images 4 --calibration-images 4 --trained \"$CFG:${DEMO}demo_duc_hdc:3\" --trained-shape 256x512      --precision-backends openvino-fp32,openvino-int8,openvino-int8-all,onnxruntime-fp32,onnxruntime-int8,peer-openvino-fp32,peer-nncf-int8,peer-nncf-int8-mixed      --peer-python /work/peer-venv/bin/python": Entry(
        "DEMO/CFG = the quick demo's run (its one epoch: :1); 64x128, 1 image each; the project's int8 and the "
        "peer's NNCF int8 only, the peer being this interpreter (no NNCF: listed unavailable)",
        precision_table, needs=("python tools/demo.py",),
        subs=(("256x512", "64x128"), ("--precision-images 4", "--precision-images 1"),
              ("--calibration-images 4", "--calibration-images 1"),
              ("\"$CFG:${DEMO}demo_duc_hdc:3\"", f"{DEMO_CONFIG}:{DEMO_RUN}demo_duc_hdc:1"),
              ("openvino-fp32,openvino-int8,openvino-int8-all,onnxruntime-fp32,onnxruntime-int8,peer-openvino-fp32,"
               "peer-nncf-int8,peer-nncf-int8-mixed", "openvino-int8,peer-nncf-int8"),
              ("/work/peer-venv/bin/python", sys.executable)), append="--gemm-size 128"),
    "python test.py configs/test/test_full_image.cfg --set model.gpu=-1 --set model.model_dir=models      --set data.image_list=data_lists/cityscapes/val.lst --set data.test_img_dir=data/cityscapes      --set data.gt_dir=data/cityscapes --set model.result_dir=results/released": Entry(
        "the released-format checkpoint (random tiny_duc_hdc) on the synthetic val images at their 64x128",
        list_results("results/released"),
        needs=("python tools/make_lists.py cityscapes ROOT --out data_lists/cityscapes [--coarse] [--patch 800]",),
        append=SMALL_TEST),
    "python test.py configs/test/test_full_image.cfg --set model.gpu=-1 --set model.model_dir=models      --images my_photos/ --out results/my_photos": Entry(
        "as written (my_photos/: two synthetic photos)", image_results("results/my_photos")),
    "python train.py CONFIG [--set section.key=value ...] [--resume [RUN_DIR] [--trust-pickled-states]]": Entry(
        "CONFIG = tiny_synthetic.cfg, the --set part as the small settings, the quick start's run resumed (--resume "
        "without RUN_DIR: the newest run folder) for one more epoch",
        checkpoint_of("models/tiny_synthetic/tiny_duc_hdc/2*/", "tiny_duc_hdc", 2),
        needs=("python train.py configs/train/tiny_synthetic.cfg",),
        subs=(("CONFIG", "configs/train/tiny_synthetic.cfg"),
              ("[--set section.key=value ...]", TINY_TRAINING.replace("num_epochs=1", "num_epochs=2")),
              ("[--resume [RUN_DIR] [--trust-pickled-states]]", "--resume"))),
    "python tools/make_lists.py cityscapes data/synthetic --out data/synthetic/lists": Entry(
        "as written", lists_of("data/synthetic/lists", ("train_7fold.lst", "val.lst"))),
    "python train.py configs/train/tiny_synthetic.cfg": Entry(
        "one epoch of 64x64 crops (4 epochs of 128x128 otherwise)",
        checkpoint_of("models/tiny_synthetic/tiny_duc_hdc/2*/", "tiny_duc_hdc", 1),
        needs=("python tools/make_lists.py cityscapes data/synthetic --out data/synthetic/lists",), append=TINY_TRAINING),
    "python tools/plot_log.py models/tiny_synthetic/tiny_duc_hdc/*/tiny_duc_hdc-metrics.jsonl curves.png": Entry(
        "as written", png_file("curves.png"), needs=("python train.py configs/train/tiny_synthetic.cfg",)),
    "python train.py configs/train/table3_r152_duc_hdc_phase1_bn.cfg": Entry(
        "no GPU, no ImageNet weights, no Cityscapes: the experiment's config as a CPU tiny_duc_hdc run on the "
        "synthetic set (its lists made by make_lists.py)",
        checkpoint_of("models/table3_r152_duc_hdc_phase1_bn/table3_r152_duc_hdc_phase1_bn/2*/",
                      "table3_r152_duc_hdc_phase1_bn", 1),
        needs=("python tools/make_lists.py cityscapes ROOT --out data_lists/cityscapes [--coarse] [--patch 800]",),
        append=PAPER_ON_CPU),
    "python train.py configs/train/table3_r152_duc_hdc_phase2.cfg      --set model.load_model_dir=\"$(python tools/paper_table.py run-dir configs/train/table3_r152_duc_hdc_phase1_bn.cfg)\"": Entry(
        "as phase 1 (the same small settings, so the inner paper_table.py run-dir finds that run); "
        "phase 1's epoch 1 loaded (load_epoch 10 otherwise), one more epoch",
        checkpoint_of("models/table3_r152_duc_hdc_phase2/table3_r152_duc_hdc_phase2/2*/", "table3_r152_duc_hdc_phase2", 2),
        needs=("python train.py configs/train/table3_r152_duc_hdc_phase1_bn.cfg",),
        subs=(("\"$(python tools/paper_table.py run-dir configs/train/table3_r152_duc_hdc_phase1_bn.cfg)\"",
               "$(python tools/paper_table.py run-dir configs/train/table3_r152_duc_hdc_phase1_bn.cfg "
               + PAPER_ON_CPU + ")"),),
        append=PAPER_ON_CPU.replace("num_epochs=1", "num_epochs=2") + " --set model.load_epoch=1"),
    "python tools/launch_local.py -n 2 configs/train/tiny_synthetic.cfg --set env.kv_store=dist_sync": Entry(
        "one epoch of 64x64 crops, into models/dist_sync (the quick start's folder stays the newest for --resume)",
        worker_lines, needs=("python tools/make_lists.py cityscapes data/synthetic --out data/synthetic/lists",),
        append=TINY_TRAINING + " --set model.model_dir=models/dist_sync"),
})
RUNS.update({
    "python train.py configs/train/tiny_synthetic.cfg [--set section.key=value ...]": Entry(
        "the --set part as the small settings (a run of its own folder: models/help_example)",
        checkpoint_of("models/help_example/tiny_duc_hdc/2*/", "tiny_duc_hdc", 1),
        needs=("python tools/make_lists.py cityscapes data/synthetic --out data/synthetic/lists",),
        subs=(("[--set section.key=value ...]", TINY_TRAINING + " --set model.model_dir=models/help_example"),)),
    "python train/train_model.py ../configs/train/train_cityscapes.cfg": Entry(
        "from train/ (the extracted `cd train &&`); no GPU, no released-layout list: fine-tunes the released-format "
        "checkpoint of ../models (epoch 20) for one epoch on the CPU, on the list make_lists.py wrote, logged "
        "every 2 updates (for plot_log.py below)",
        checkpoint_of("models/ResNet_DUC_HDC_CityScapes/2*/", "ResNet_DUC_HDC_CityScapes", 21), cwd="train",
        needs=("python tools/make_lists.py cityscapes ROOT --out data_lists/cityscapes [--coarse] [--patch 800]",),
        subs=(("train/train_model.py", "train_model.py"),),
        append="--set env.use_cpu=True --set data.train_list=../data_lists/cityscapes/train_7fold.lst "
               "--set data.scale_factors=1 --set model.num_epochs=21 --set data.crop_shape=64,64 "
               "--set data.random_bound=8,8 --set model.log_interval=2"),
    "python test/../test.py ../configs/test/test_full_image.cfg --set model.gpu=-1 --set data.test_scales=0.75,1,1.25": Entry(
        "from test/ (the extracted `cd test &&`: the released config's ../ paths); its released-layout list written by make_lists.py; "
        "the 64x128 images at their size",
        list_results("results"), cwd="test", subs=(("test/../test.py", "../test.py"),),
        needs=("python tools/make_lists.py cityscapes ROOT --out data_lists/cityscapes [--coarse] [--patch 800]",),
        append="--set data.image_list=../data_lists/cityscapes/val.lst " + SMALL_TEST),
    "python test/../test.py ../configs/test/test_full_image.cfg --set model.gpu=-1 --images photos/ --out results/photos": Entry(
        "from test/ (the extracted `cd test &&`; photos/ there: two synthetic photos)",
        image_results("test/results/photos"), cwd="test", subs=(("test/../test.py", "../test.py"),)),
    "python tools/bench.py --shapes 512x1024 --runs 5 --sections main --out bench.json": Entry(
        "64x128, 1 run, tiny preset, the main section's reference pair", bench_json("bench.json"),
        subs=(("512x1024", "64x128"), ("--runs 5", "--runs 1")), append=f"{SMALL_BENCH} {MAIN_PAIR}"),
    "python tools/bench_data.py [--images 4] [--samples 40] [--workers 0 1 2] [--crop 880 880]": Entry(
        "1 image, 4 samples, workers 0 and 1, 64x64 crops (1024x2048 images otherwise)",
        stdout_has("samples/s"),
        subs=(("[--images 4]", "--images 1"), ("[--samples 40]", "--samples 4"), ("[--workers 0 1 2]", "--workers 0 1"),
              ("[--crop 880 880]", "--crop 64 64"))),
    "python tools/bench_eval.py [--images 40] [--size 1024 2048] [--repeats 3] [--workers N]": Entry(
        "2 images of 64x128, 1 repeat, 1 worker", bench_eval_report("bench_eval.json"),
        subs=(("[--images 40]", "--images 2"), ("[--size 1024 2048]", "--size 64 128"), ("[--repeats 3]", "--repeats 1"),
              ("[--workers N]", "--workers 1"))),
    "python tools/compare_systems.py [--out docs/systems] [--quick] [--systems fcn8s,pspnet,...]": Entry(
        "--quick, two systems", report_of("docs/systems/SYSTEMS.md", "fcn8s"),
        subs=(("[--out docs/systems]", "--out docs/systems"), ("[--quick]", "--quick"),
              ("[--systems fcn8s,pspnet,...]", "--systems fcn8s,pspnet"))),
    "python tools/evaluate.py RESULT_DIR GT_ROOT [--dataset cityscapes": Entry(
        "the quick demo's predictions and ground truth", metrics_json("demo_output/results/score/metrics.json"),
        needs=("python tools/demo.py",),
        subs=(("RESULT_DIR", "demo_output/results/score"), ("GT_ROOT", "demo_output/cityscapes"),
              ("[--dataset cityscapes", "--dataset cityscapes"))),
    "python tools/export_model.py --prefix models/ResNet_DUC_HDC_CityScapes --epoch 20         --out export/duc [--preset NAME": Entry(
        "the released-format checkpoint, the architecture from its symbol (no --preset), traced at 64x128",
        exported("export/duc"), subs=(("[--preset NAME", "--shape 64,128"),)),
    "python tools/generate_symbols.py [--out symbols]": Entry(
        "as written (into the sandbox's symbols/)", symbols_written, subs=(("[--out symbols]", "--out symbols"),)),
    "python tools/import_gluoncv_pspnet.py FILE --out PREFIX [--epoch 0]": Entry(
        "no model-zoo download: FILE = GluonCV's psp_resnet101_citys with random values, saved by GluonCV",
        checkpoint_file("models/psp-0000.params"), prepare=write_gluoncv_pspnet,
        subs=(("FILE", "@{models/psp_resnet101_citys.params}"), ("PREFIX", "models/psp"), ("[--epoch 0]", "--epoch 0"))),
    "python tools/make_lists.py cityscapes ROOT --out data_lists/cityscapes [--coarse] [--patch 800]": Entry(
        "ROOT = data/cityscapes; without --coarse (no gtCoarse here); --patch 800 as documented",
        lists_of("data_lists/cityscapes", ("train_7fold.lst", "train_12fold.lst", "val.lst")),
        subs=(("ROOT", "data/cityscapes"), (" [--coarse]", ""), ("[--patch 800]", "--patch 800"))),
    "python tools/make_lists.py kitti ROOT --out data_lists/kitti [--patch 320] [--stride 100]": Entry(
        "ROOT = data/kitti; 64x128 images: patch 32, stride 16", lists_of("data_lists/kitti", ()),
        subs=(("ROOT", "data/kitti"), ("[--patch 320]", "--patch 32"), ("[--stride 100]", "--stride 16"))),
    "python tools/make_lists.py voc ROOT --out data_lists/voc": Entry(
        "ROOT = data/voc", lists_of("data_lists/voc", ()), subs=(("ROOT", "data/voc"),)),
    "python tools/make_synthetic_cityscapes.py ROOT [--train N] [--val N] [--test N]": Entry(
        "ROOT = data/generated, 1 image per split at 64x128", dataset_files,
        subs=(("ROOT", "data/generated"), ("[--train N]", "--train 1"), ("[--val N]", "--val 1"),
              ("[--test N]", "--test 1 --height 64 --width 128"))),
    "python tools/paper_table.py table --results results/paper table1_row1_baseline_ds8 ...": Entry(
        "one experiment, no metrics yet: its paper row and `-`", paper_rows, subs=((" ...", ""),)),
    "python tools/paper_table.py test-args configs/train/table1_row1_baseline_ds8.cfg ... [--set ...]": Entry(
        "one config, no --set", stdout_has("table1_row1_baseline_ds8\t--set"), subs=((" ... [--set ...]", ""),)),
    "python tools/paper_table.py run-dir configs/train/table1_row1_baseline_ds8.cfg [--set ...]": Entry(
        "--set: its model_dir and prefix pointed at the table3 phase-1 run above, whose folder it must print",
        stdout_has("models/table3_r152_duc_hdc_phase1_bn/table3_r152_duc_hdc_phase1_bn/2"),
        needs=("python train.py configs/train/table3_r152_duc_hdc_phase1_bn.cfg",),
        subs=(("[--set ...]", "--set model.model_dir=models/table3_r152_duc_hdc_phase1_bn "
                              "--set model.save_model_prefix=table3_r152_duc_hdc_phase1_bn"),)),
    "python tools/plot_log.py models/ResNet_DUC_HDC_CityScapes-metrics.jsonl curves.png": Entry(
        "the metrics of the train_model.py fine-tuning run above (models/ResNet_DUC_HDC_CityScapes/<time>/)",
        png_file("curves-released.png"),
        needs=("python train/train_model.py ../configs/train/train_cityscapes.cfg",),
        subs=(("models/ResNet_DUC_HDC_CityScapes-metrics.jsonl", "@{models/ResNet_DUC_HDC_CityScapes/2*/ResNet_DUC_HDC_CityScapes-metrics.jsonl}"),
              ("curves.png", "curves-released.png"))),
    "python tools/preflight.py table1_row1_baseline_ds8 ... --data-root data/cityscapes         --lists data_lists/cityscapes --gpus 0,1,2,3 [--rehearse rehearsal]": Entry(
        "one experiment, no rehearsal (with --rehearse a missing GPU is a note); no GPU and no ImageNet weights "
        "here: it must name them as missing and exit 2, as its --help says",
        preflight_missing, status=2, subs=((" ...", ""), (" [--rehearse rehearsal]", ""))),
    "python tools/reproduce_claims.py --budget full": Entry(
        "the gridding claim only (exact counts; duc and hdc train for 80 minutes)", claims_report,
        append="--claims gridding"),
})

DOCUMENTED = sorted({command for _, command in COMMANDS})
NEWEST = re.compile(r"@\{([^}]*)\}")
INNER = re.compile(r"\$\((python [^)]*)\)")


def command_line(sandbox: Sandbox, documented: str) -> str:
    """The documented command as it runs here: ``subs`` replaced, ``append`` added, ``@{PATTERN}``
    the newest match (relative to the command's folder) and ``$(python ...)`` the inner command's output."""
    entry = RUNS[documented]
    line = documented
    for old, new in entry.subs:
        line = line.replace(old, new)
    line = f"{line} {entry.append}".strip()
    folder = sandbox.path(entry.cwd)
    line = NEWEST.sub(lambda m: os.path.relpath(sandbox.newest(m.group(1)), folder) + ("/" if m.group(1).endswith("/") else ""), line)
    return INNER.sub(lambda m: _inner_output(sandbox, m.group(1), entry.cwd), line)


def _inner_output(sandbox: Sandbox, command: str, cwd: str) -> str:
    ran = sandbox.run(command, cwd)
    assert ran.status == 0, ran.explain()
    return ran.stdout.strip()


def run_entry(sandbox: Sandbox, documented: str) -> Ran:
    """Run what ``documented`` needs, then ``documented`` itself."""
    entry = RUNS[documented]
    for needed in entry.needs:
        ran = run_entry(sandbox, needed)
        assert ran.status == RUNS[needed].status, ran.explain()
    if entry.prepare:
        entry.prepare(sandbox)
    if entry.runs_as:
        return run_entry(sandbox, entry.runs_as)
    return sandbox.run(command_line(sandbox, documented), entry.cwd)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory, warm_python):
    return Sandbox(str(tmp_path_factory.mktemp("documented")), warm_python)


def test_every_documented_command_has_one_entry():
    assert sorted(set(DOCUMENTED) - set(RUNS)) == [], "documented commands without an entry in RUNS"
    assert sorted(set(RUNS) - set(DOCUMENTED)) == [], "entries of RUNS that no document has (any more)"
    for documented, entry in RUNS.items():
        assert all(old in documented for old, _ in entry.subs), f"{documented}: a substitution matches nothing"
        assert all(needed in RUNS for needed in entry.needs + tuple(filter(None, [entry.runs_as]))), \
            f"{documented}: needs an unknown command"


@pytest.mark.parametrize("documented", DOCUMENTED, ids=[c[:70] for c in DOCUMENTED])
def test_documented_command_runs(sandbox, documented):
    entry = RUNS[documented]
    ran = run_entry(sandbox, documented)
    assert ran.status == entry.status, ran.explain()
    entry.check(ran, sandbox)
