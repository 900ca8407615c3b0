"""The virtual-view question: which reconstruction choice, if any, makes VRM's virtual views pay?

    python -m bench.virtual_views --jobs 2             # resumable: finished runs are reused
    python -m bench.virtual_views --report-only        # tables from what has finished so far

Part 1 (the options, validation only): VRM at the config defaults (``--vrm`` adds options, e.g. the λ the
equal-budget study chose) against one change at a time: no virtual views, the student's BatchNorm on
separate forwards or on the real view only (``vrm.student_bn``), the real view without crop/flip
(``data.real_view_augment``), CE on the virtual view (``vrm.ce_virtual``), the virtual view's strength
(``data.virtual_num_ops`` / ``data.virtual_magnitude``) and every edge (``vrm.is_edges=all``) instead of the
cross-view ones. Score: validation top-1 (mean of the last 3 epochs) per seed, and the paired difference
from the default (mean with a 95 % t-interval over seeds). The test set plays no part.
Part 2 (the regime): the paper's motivation is that relation matching overfits and virtual views regularise.
Each ``--regimes`` budget (``PCxE``: PC training images per class, E epochs; the default pair is the one
where the gap barely shows and the harsher one where it does): the train − test gap (last epoch) of the
student alone, KD, VRM without and with virtual views, and VRM with a plain real view, over
``--regime-seeds``.
Part 3 (whose lead is the plain real view?): the options part's one lead, the real view without crop/flip,
also changes what the cross-entropy sees, so DIST (published weights) trains with and without it on the
same seeds; the difference of the two methods' paired gains says whether the lead is VRM's own.
Results: bench/results/virtual_views/<run>/.
"""

from __future__ import annotations

import argparse
import copy
import os

import pandas as pd

from bench.report import machine, markdown_table
from bench.study import (
    distill_overrides,
    fmt_paired,
    paired,
    parse_study_args,
    pm,
    run_jobs,
    run_study,
    study_parser,
    teacher_note,
)

PLAIN = "data.real_view_augment=false"  # the real view without crop/flip (they go into the virtual view)
# (label, options on top of the default VRM): one suspect at a time
VARIANTS = [
    ("vrm", []),
    ("no_virtual", ["vrm.is_edges=real_only"]),
    ("bn_separate", ["vrm.student_bn=separate"]),
    ("bn_real", ["vrm.student_bn=real"]),
    ("real_plain", [PLAIN]),
    ("ce_virtual", ["vrm.ce_virtual=1.0"]),
    ("ops1", ["data.virtual_num_ops=1"]),
    ("ops3", ["data.virtual_num_ops=3"]),
    ("mag5", ["data.virtual_magnitude=5"]),
    ("mag15", ["data.virtual_magnitude=15"]),
    ("edges_all", ["vrm.is_edges=all"]),
]
# (label, method, options) of the regime part
REGIME = [
    ("student_alone", "vanilla", []),
    ("kd", "kd", []),
    ("vrm_no_virtual", "vrm", ["vrm.is_edges=real_only"]),
    ("vrm", "vrm", []),
    # the options part's one lead (the real view without crop/flip): does it hold where overfitting shows?
    ("vrm_real_plain", "vrm", [PLAIN]),
]


def parse_args(argv=None) -> argparse.Namespace:
    ap = study_parser(__doc__)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--vrm", nargs="*", default=[], help="options (key=value) of the default VRM")
    ap.add_argument("--variants", nargs="+", default=[v[0] for v in VARIANTS])
    ap.add_argument(
        "--regimes",
        type=_regime,
        nargs="+",
        default=[(50, 30), (20, 40)],
        metavar="PCxE",
        help="budgets of part 2: images per class x epochs (default: 50x30 20x40)",
    )
    ap.add_argument("--regime-seeds", type=int, nargs="+", default=None, help="default: --seeds")
    ap.add_argument("--no-regime", action="store_true", help="skip part 2")
    ap.add_argument("--no-augment-check", action="store_true", help="skip part 3")
    args = parse_study_args(ap, "virtual_views", argv)
    if args.regime_seeds is None:
        args.regime_seeds = args.seeds
    unknown = set(args.variants) - {v[0] for v in VARIANTS}
    if unknown:
        ap.error(f"unknown variants {sorted(unknown)}; choose from {[v[0] for v in VARIANTS]}")
    return args


def _regime(text: str) -> tuple[int, int]:
    try:
        per_class, epochs = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: write a regime as PCxE, e.g. 20x40") from None
    if per_class < 1 or epochs < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: images per class and epochs must be at least 1")
    return per_class, epochs


def _tag(opts: list[str]) -> str:
    return "_".join(o.replace("vrm.", "").replace("=", "") for o in opts) if opts else ""


def options_part(args, out: str) -> pd.DataFrame:
    base = os.path.join(out, "options" + (f"_{_tag(args.vrm)}" if args.vrm else ""))
    jobs, rows = [], []
    for seed in args.seeds:
        for label, opts in VARIANTS:
            if label not in args.variants:
                continue
            keys = {o.split("=")[0] for o in opts}
            extra = [*(o for o in args.vrm if o.split("=")[0] not in keys), *opts]
            jobs.append(
                (os.path.join(base, f"seed{seed}", label), distill_overrides(args, "vrm", seed, extra))
            )
            rows.append({"variant": label, "options": " ".join(opts) or "(defaults)", "seed": seed})
    return pd.concat([pd.DataFrame(rows), run_jobs(args, jobs, "virtual views: options")], axis=1)


def regime_part(args, out: str, per_class: int, epochs: int) -> pd.DataFrame:
    r_args = copy.copy(args)
    r_args.per_class, r_args.epochs = per_class, epochs
    tag = f"_{_tag(args.vrm)}" if args.vrm else ""  # VRM's options name the folder, as in the options part
    base = os.path.join(out, f"regime_pc{per_class}_e{epochs}{tag}")
    jobs, rows = [], []
    for seed in args.regime_seeds:
        for label, method, opts in REGIME:
            extra = [*(args.vrm if method == "vrm" else []), *opts]
            jobs.append(
                (os.path.join(base, f"seed{seed}", label), distill_overrides(r_args, method, seed, extra))
            )
            rows.append({"variant": label, "seed": seed})
    desc = f"virtual views: regime {per_class}x{epochs}"
    return pd.concat([pd.DataFrame(rows), run_jobs(args, jobs, desc)], axis=1)


def augment_part(args, out: str) -> pd.DataFrame:
    """DIST with and without crop/flip on its real view, on the options part's seeds (validation)."""
    jobs, rows = [], []
    for seed in args.seeds:
        for label, extra in (("dist", []), ("dist_real_plain", [PLAIN])):
            jobs.append(
                (
                    os.path.join(out, "augment", f"seed{seed}", label),
                    distill_overrides(args, "dist", seed, extra),
                )
            )
            rows.append({"variant": label, "seed": seed})
    return pd.concat([pd.DataFrame(rows), run_jobs(args, jobs, "virtual views: augment check")], axis=1)


def augment_markdown(opts: pd.DataFrame, aug: pd.DataFrame) -> str:
    def scores(df, label):
        return df[(df.variant == label) & df.done].set_index("seed").val_score

    pairs = {
        "vrm": (scores(opts, "vrm"), scores(opts, "real_plain")),
        "dist": (scores(aug, "dist"), scores(aug, "dist_real_plain")),
    }
    rows = [
        [m, f"{len((p - a).dropna())}/{len(aug) // 2}", pm(a), pm(p), fmt_paired(paired(p, a))]
        for m, (a, p) in pairs.items()
    ]
    gain = {m: (p - a).dropna() for m, (a, p) in pairs.items()}
    rows.append(["VRM's gain − DIST's gain", "", "", "", fmt_paired(paired(gain["vrm"], gain["dist"]))])
    head = [
        "method",
        "seeds done",
        "val top-1, real view augmented",
        "val top-1, real view plain",
        "Δ plain − augmented (95 % CI)",
    ]
    return markdown_table(head, rows)


def options_markdown(df: pd.DataFrame) -> str:
    ref = df[(df.variant == "vrm") & df.done].set_index("seed")
    rows = []
    for label, g in df.groupby("variant", sort=False):
        d = g[g.done].set_index("seed")
        rows.append(
            [
                label,
                g.options.iloc[0],
                f"{len(d)}/{len(g)}",
                pm(d.val_score),
                "(reference)" if label == "vrm" else fmt_paired(paired(d.val_score, ref.val_score)),
                pm(d.last_train - d.last_test),
                f"{d.epoch_time.mean():.1f}" if len(d) else "—",
            ]
        )
    head = [
        "variant",
        "options",
        "seeds done",
        "val top-1",
        "Δ val vs vrm (95 % CI)",
        "gap train − test",
        "s/epoch",
    ]
    return markdown_table(head, rows)


def regime_markdown(df: pd.DataFrame) -> str:
    rows = []
    ref = df[(df.variant == "vrm_no_virtual") & df.done].set_index("seed")
    for label, g in df.groupby("variant", sort=False):
        d = g[g.done].set_index("seed")
        gap = d.last_train - d.last_test
        rows.append(
            [
                label,
                f"{len(d)}/{len(g)}",
                pm(d.last_train),
                pm(d.last_test),
                pm(gap),
                pm(d.val_score),
                *(
                    ["(reference)"] * 2
                    if label == "vrm_no_virtual"
                    else [
                        fmt_paired(paired(gap, ref.last_train - ref.last_test)),
                        fmt_paired(paired(d.last_test, ref.last_test)),
                    ]
                ),
            ]
        )
    head = [
        "method",
        "seeds done",
        "last train top-1",
        "last test top-1",
        "gap train − test",
        "val top-1",
        "Δ gap vs vrm_no_virtual (95 % CI)",
        "Δ last test vs vrm_no_virtual (95 % CI)",
    ]
    return markdown_table(head, rows)


def markdown(
    args,
    opts: pd.DataFrame,
    regimes: dict[tuple[int, int], pd.DataFrame],
    aug: pd.DataFrame | None,
    teacher: float,
) -> str:
    parts = [
        "## The virtual-view question (validation only)",
        "",
        f"Command: `{args.command}`  ",
        f"Machine: {machine()}  ",
        f"Protocol: {args.dataset}, {args.per_class} training images per class ({args.val_per_class} per class held "
        f"out for validation); teacher {args.teacher} ({teacher_note(teacher)}), student {args.student}, "
        f"{args.epochs} epochs, batch {args.batch_size}, SGD lr {args.lr} cosine. Default VRM: "
        f"{' '.join(args.vrm) or 'config defaults'}; seeds {args.seeds}. Val top-1: mean of the last 3 epochs "
        f"({args.val_per_class} images per class). Δ = mean of the per-seed differences from the default with a "
        "95 % t-interval; ✓ / ✗: above / below 0. gap = last-epoch train top-1 (augmented batches) − test top-1.",
        "",
        options_markdown(opts),
    ]
    for (per_class, epochs), regime in regimes.items():
        parts += [
            "",
            f"Regime: {per_class} images per class, {epochs} epochs, seeds {args.regime_seeds} (same teacher, "
            "student and optimiser). Does relation matching overfit here, and do virtual views close the gap? "
            "vrm_real_plain's train top-1 is measured on its real view, the plain image, so its gap is not "
            "comparable with the others'; compare its test top-1.",
            "",
            regime_markdown(regime),
        ]
    if aug is not None:
        parts += [
            "",
            "Whose lead is the plain real view (`data.real_view_augment=false`)? The same change for DIST "
            "(published weights), same seeds, validation top-1; the last row pairs the two gains by seed.",
            "",
            augment_markdown(opts, aug),
        ]
    return "\n".join(parts)


def tables(args, out: str, teacher: dict) -> str:
    opts = options_part(args, out)
    regimes = {} if args.no_regime else {r: regime_part(args, out, *r) for r in args.regimes}
    aug = None if args.no_augment_check else augment_part(args, out)
    return markdown(args, opts, regimes, aug, teacher["best_test"])


def main(argv=None) -> None:
    run_study("virtual_views", parse_args(argv), tables)


if __name__ == "__main__":
    main()
