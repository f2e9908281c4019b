"""Plain-text tables of a :mod:`experiments.bench.suite` result."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

from experiments.bench.systems import is_system_preset

MAIN_LABELS = {"gluon": "(a) gluon fast", "module": "(b) mx.mod.Module", "torch": "(c) torch eager",
               "openvino-fp32": "OpenVINO fp32", "openvino-bf16": "OpenVINO bf16", "openvino-int8": "OpenVINO int8",
               "openvino-int8-all": "OpenVINO int8, int8_fp32 none",
               "onnxruntime-fp32": "ONNX Runtime fp32", "onnxruntime-int8": "ONNX Runtime int8",
               "peer-openvino-fp32": "peer: OpenVINO fp32", "peer-openvino-bf16": "peer: OpenVINO bf16",
               "peer-openvino-default": "peer: OpenVINO default hint", "peer-nncf-int8": "peer: OpenVINO + NNCF int8",
               "peer-nncf-int8-mixed": "peer: OpenVINO + NNCF int8 mixed",
               "predict-whole": "image: predictor, FastForward fp32",
               "predict-openvino": "image: predictor, OpenVINO fp32 (test.py)",
               "bare-openvino": "image: by hand, bare OpenVINO fp32"}
#: a comparison system's reference (``experiments.bench.systems``)
SYSTEM_REFERENCE_LABEL = "(a) MXNet hybridized (test.py)"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> List[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]


def _seconds(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.3f}"


def _percent(fraction: Optional[float]) -> str:
    return "-" if fraction is None else f"{100 * fraction:.2f}%"


def _loads(values: Optional[List[float]]) -> str:
    return ", ".join(f"{v:.2f}" for v in values) if values else "unknown"


def _memory(result: Dict[str, object]) -> str:
    return f"{result['peak_rss_mb'] / 1024:.2f}" if "peak_rss_mb" in result else "-"


def _main_table(entry: Dict[str, object], macs: Dict[str, int], system: bool) -> List[str]:
    """One shape of the main section: a row per variant, a line per unavailable one; ``system``:
    of a comparison system (its reference is test.py's MXNet forward, not FastForward)."""
    tag = "x".join(map(str, entry["shape"]))
    variants = entry["variants"]
    labels = dict(MAIN_LABELS, gluon=SYSTEM_REFERENCE_LABEL) if system else MAIN_LABELS
    reference = "test.py's MXNet forward" if system else "FastForward fp32 (image rows: through the predictor)"
    rows = []
    for name, v in variants.items():
        speedup = v.get("speedup_vs_reference")
        int8_share = f" / {100 * v['fraction_of_int8_peak']:.0f}%" if "fraction_of_int8_peak" in v else ""
        rows.append([labels.get(name, name), _seconds(v["median_s"]),
                     "-" if speedup is None else f"x{speedup:.2f}", f"{v['gflops']:.0f}",
                     f"{100 * v['fraction_of_peak']:.0f}%{int8_share}", f"{v['gflops_valid_taps']:.0f}", _memory(v),
                     f"{v['max_abs_difference']:.1e}", _percent(v["argmax_agreement"])])
    lines = [f"Whole image {tag} ({macs['gemm'] / 1e12:.3f} T multiply-adds, {macs['gemm_valid_taps'] / 1e12:.3f} T "
             f"on taps inside the image), median of {len(variants['gluon']['runs_s'])} runs; 'vs fp32': speed-up "
             f"over {reference}, 'argmax =': agreement with it:"]
    lines += _table(["variant", "latency s", "vs fp32", "GFLOP/s", "of peak fp32 / int8", "GFLOP/s inside", "peak RSS GB",
                     "max |dp|", "argmax ="], rows)
    ratios = [f"a/{k} = {entry[f'ratio_a_over_{k}']:.2f}" for k in ("b", "c")
              if entry[f"ratio_a_over_{k}"] is not None]
    skipped = [f"{name} skipped: {why}" for name, why in entry["skipped"].items()]
    mode = "interleaved" if entry["interleaved"] else "one process at a time (memory)"
    lines += [f"{labels.get(name, name)}: quantized once in its own process: {v['quantization']['build_s']:.1f} s, "
              f"peak RSS {v['quantization']['peak_rss_mb'] / 1024:.2f} GB (its row: the inference, reading the "
              f"quantized file)" for name, v in variants.items() if "quantization" in v]
    lines += [f"{labels.get(name, name)}: unavailable: {reason}"
              for name, reason in entry.get("unavailable", {}).items()]
    return lines + [", ".join(ratios + [mode] + skipped)]


def format_report(results: Dict[str, object]) -> str:
    """The machine, GEMM peak and one table per section."""
    m = results["machine"]
    gemm = results["gemm_gflops"]
    lines = [f"CPU: {m['cpu_model']}, {m['physical_cores']} cores / {m['logical_cpus']} logical, "
             f"avx512 {m['avx512']}, avx512_bf16 {m['avx512_bf16']}, amx {m['amx']}; "
             f"MXNet {m['mxnet']} (oneDNN {m['mxnet_onednn']}), OMP_NUM_THREADS {m['omp_num_threads']}",
             f"GEMM peak fp32 {gemm['size']}^3: {gemm['peak']:.0f} GFLOP/s (mx.nd.dot {gemm['mxnet_dot']:.0f}, "
             f"numpy {gemm['numpy_matmul']:.0f}, oneDNN FullyConnected {gemm['onednn_fully_connected']:.0f})",
             *([f"GEMM peak int8 (OpenVINO, QDQ MatMul {results['gemm_int8']['size']}^3, runs "
                f"{results['gemm_int8']['int8_runtime_precision']}): {results['gemm_int8']['int8_gops']:.0f} GOP/s "
                f"(the same product in fp32: {results['gemm_int8']['fp32_gflops']:.0f} GFLOP/s)"]
               if "gemm_int8" in results else []),
             f"weights: {results['weights']['source']}; load average (1, 5, 15 min) at the start "
             f"{_loads(m.get('load_average'))}, at the end {_loads(results.get('load_average_at_end'))}", ""]
    peer = results.get("peer") or {}
    if peer.get("python"):
        versions = peer.get("versions", {})
        lines += [f"peer interpreter {peer['python']} (Python {peer.get('python_version', '?')}): " +
                  ", ".join(f"{m} {v or 'unavailable'}" for m, v in versions.items()), ""]
    for entry in results.get("main", []):
        lines += _main_table(entry, results["macs"]["x".join(map(str, entry["shape"]))],
                             is_system_preset(results["options"]["preset"])) + [""]
    if "levers" in results:
        levers = results["levers"]
        rows = [[name, _seconds(v["median_s"]), f"{v['gflops']:.0f}", f"{100 * v['fraction_of_peak']:.0f}%",
                 f"{v['max_abs_difference_vs_gluon']:.1e}"] for name, v in levers["variants"].items()]
        lines += [f"Levers at {'x'.join(map(str, levers['shape']))} (one process at a time; MXNet default "
                  f"threads = {levers['omp_threads_default']}):"]
        lines += _table(["variant", "latency s", "GFLOP/s", "of peak", "max |dp| vs gluon"], rows) + [""]
    if "sliding" in results:
        s = results["sliding"]
        lines += [f"Predictor at {'x'.join(map(str, s['shape']))}: whole image "
                  f"{s['variants']['predict-whole']['median_s']:.3f} s, sliding ({s['windows']} windows) "
                  f"{s['variants']['predict-sliding']['median_s']:.3f} s: x{s['sliding_over_whole']:.2f}", ""]
    precision = results.get("precision")
    if precision:
        for key in ("random_weights", "trained"):
            if key not in precision:
                continue
            block = precision[key]
            rows = [[p, _seconds(v.get("median_s")), f"x{v['speedup_vs_fp32']:.2f}" if "speedup_vs_fp32" in v else "-",
                     f"{100 * v['argmax_agreement']:.2f}%", _percent(v["argmax_agreement_confident"]),
                     f"{v['max_abs_difference']:.3f}",
                     f"{100 * v['miou']:.2f}", f"{100 * v['miou_change']:+.2f}", _memory(v)]
                    for p, v in block["variants"].items()]
            lines += [f"Precision at {'x'.join(map(str, block['shape']))}, {block['weights']}, "
                      f"MXNet's precisions and the deployment backends against FastForward fp32, "
                      f"{block['images']} synthetic val images; 'confident': the "
                      f"{_percent(block['confident_fraction'])} of pixels whose fp32 top-two "
                      f"probabilities differ by >= {block['confident_margin']}:"]
            lines += _table(["precision", "latency s", "speed-up", "argmax = fp32", "confident", "max |dp|",
                             "mIoU %", "change", "peak RSS GB"], rows)
            lines += [f"{name}: unavailable: {reason}" for name, reason in block.get("unavailable", {}).items()] + [""]
    if "train" in results:
        t = results["train"]
        lines += [f"Training {'x'.join(map(str, t['crop']))}, batch {t['batch']}: {t['median_s']:.3f} s per "
                  f"update = {t['iterations_per_s']:.3f} it/s, peak RSS {_memory(t)} GB", ""]
    lines += ["Targets:"] + [f"  {'met    ' if met else 'NOT met'}  {name}" for name, met in results["targets"].items()]
    return "\n".join(lines)
