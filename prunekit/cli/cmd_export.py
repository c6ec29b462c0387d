"""``prunekit export``: a saved pruned model as ONNX and/or a ``torch.export`` program, verified."""

from __future__ import annotations

import argparse
from pathlib import Path

from prunekit.cli._sources import add_trust_arg

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    from prunekit.cli._models import example_input, load_saved, read_saved
    from prunekit.export import export_onnx, export_program, verify_export

    spec = read_saved(args.model_dir, option="--model-dir")
    x = example_input(args.input_shape, spec, where=args.model_dir)
    model = load_saved(args.model_dir, args.builder, option="--model-dir", trust_builder=args.trust_builder)
    if args.fold_batchnorm:
        from prunekit.fold import fold_batchnorm

        model = fold_batchnorm(model, (x,), inplace=True)
    if args.fold_constants:
        from prunekit.fold import fold_constants

        model = fold_constants(model, (x,))
    out = Path(args.out)
    stem = out.with_suffix("") if out.suffix in (".onnx", ".pt2") else out
    dynamic = not args.static_batch
    files: dict[str, Path] = {}
    if args.format in ("pt2", "both"):
        files["program"] = export_program(
            model, (x,), out if args.format == "pt2" else stem.with_suffix(".pt2"), dynamic_batch=dynamic
        )
    if args.format in ("onnx", "both"):
        target = out if args.format == "onnx" else stem.with_suffix(".onnx")
        files["onnx"] = export_onnx(model, (x,), target, opset=args.opset, dynamic_batch=dynamic)
    for path in files.values():
        print(f"wrote {path}")
    if not args.no_verify:
        diffs = verify_export(
            model, (x,), program=files.get("program"), onnx=files.get("onnx"), batch_sizes=(1, 3) if dynamic else ()
        )
        for key, diff in diffs.items():
            print(f"{key}: outputs match the PyTorch model (max abs diff {diff:.3g})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a saved pruned model to ONNX / torch.export and check the outputs match",
        description="Loads a folder written by prunekit.save, exports it with a dynamic batch dim, then "
        "reloads the files (onnxruntime, torch.export.load) and checks their outputs match the model.",
    )
    p.add_argument("--model-dir", required=True, help="folder written by prunekit.save")
    p.add_argument("--builder", help="model spec that builds the unpruned model (default: the saved one)")
    p.add_argument("--format", choices=["onnx", "pt2", "both"], default="onnx", help="what to write (default: onnx)")
    p.add_argument("--out", required=True, help="output file; with --format both, its stem gets .onnx and .pt2")
    p.add_argument("--input-shape", help="example input shape with batch, e.g. 1,1,28,28 (default: the saved one)")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (default: 18)")
    p.add_argument("--static-batch", action="store_true", help="keep the example's batch size (default: dynamic)")
    p.add_argument(
        "--fold-batchnorm",
        action="store_true",
        help="fold each batch norm into the conv before it first (inference only; ONNX Runtime does this itself, "
        "a torch.export program run eagerly does not)",
    )
    p.add_argument(
        "--fold-constants",
        action="store_true",
        help="fold each removed branch's constant into the addition that reads it first, so the block computes "
        "act(x + c) (inference only; after --fold-batchnorm when both are given)",
    )
    p.add_argument("--no-verify", action="store_true", help="skip reloading the files and comparing outputs")
    add_trust_arg(p)
    p.set_defaults(func=_run)
