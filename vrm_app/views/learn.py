"""Learn VRM: a guided walk through the method on a tiny batch, and the spurious-response experiment."""

import streamlit as st

from vrm_app import state
from vrm_app.state import models as mstate
from vrm_app.widgets import figure, table
from vrm_viz import lesson, spurious
from vrm_viz.figures import lesson as lfig
from vrm_viz.glossary import PAPER, PAPER_TITLE, glossary_markdown
from vrm_viz.spurious import vrm_options

st.title("Learn VRM")
st.caption(
    "Virtual Relation Matching, step by step, on logits saved during a real training run. Every number "
    "comes from the trainer's own functions (vrm_train.relations) applied to those logits. "
    f"Paper: [{PAPER_TITLE}]({PAPER})."
)
with st.expander("Glossary: IS, IC, IV, REP, UEP, δ, CKA"):
    st.markdown(glossary_markdown())
runs = state.runs()
if runs is None:
    st.stop()
run = state.pick_run(
    mstate.full_vrm_first(runs),
    key="learn_run",
    need=lambda r: r.teacher is not None and len(r.snapshot_epochs("probe")) > 0,
)
if run is None:
    st.info("The lesson needs a distillation run (with a teacher) that has probe snapshots.")
    st.stop()
cfg = vrm_options(run.config)
part = st.radio("Part", ["Guided demo", "Spurious responses"], horizontal=True, key="learn_part")

if part == "Guided demo":
    snap = mstate.probe_snapshot(run, key="learn_epoch")
    if snap is None:
        st.stop()
    labels = mstate.sample_labels(snap)
    c1, c2 = st.columns([3, 1])
    samples = c1.multiselect(
        "Images of the tiny batch (2–6)",
        list(range(snap.batch_size)),
        default=list(range(min(5, snap.batch_size))),
        format_func=lambda i: labels[i],
        max_selections=6,
        key="learn_samples",
    )
    uep_ratio = c2.slider("UEP ratio", 0.0, 0.9, float(cfg["uep_ratio"]), 0.04, key="learn_uep_ratio")
    if len(samples) < 2:
        st.info("Choose at least two images: relations need pairs.")
        st.stop()
    batch = lesson.tiny_batch(snap, sorted(samples), config=run.config)

    def move(delta: int) -> None:
        i = lesson.STEPS.index(st.session_state.get("learn_step", lesson.STEPS[0]))
        st.session_state["learn_step"] = lesson.STEPS[max(0, min(len(lesson.STEPS) - 1, i + delta))]

    step = st.radio(
        "Step", lesson.STEPS, format_func=lesson.STEP_TITLES.get, horizontal=True, key="learn_step"
    )
    b1, b2, _ = st.columns([1, 1, 6])
    b1.button("◀ Back", key="learn_back", on_click=move, args=(-1,), disabled=step == lesson.STEPS[0])
    b2.button("Next ▶", key="learn_next", on_click=move, args=(1,), disabled=step == lesson.STEPS[-1])
    st.subheader(lesson.STEP_TITLES[step])
    st.markdown(lesson.EXPLANATIONS[step])
    tag = f"{run.name}_e{snap.epoch}"
    if step == "logits":
        logits = lesson.logit_frame(batch)
        figure(lfig.logits_figure(logits, batch.classes), key="learn_logits", filename=f"lesson_logits_{tag}")
        table(logits, key="learn_logits", filename=f"lesson_logits_{tag}")
    elif step == "edges":
        only = st.toggle("Only the inter-view edges (m = n)", key="learn_inter_only")
        verts = {m: lesson.vertex_frame(batch, m) for m in ("teacher", "student")}
        edges = lesson.edge_frame(batch)
        figure(
            lfig.edges_figure(verts, edges, inter_view_only=only),
            key="learn_edges",
            filename=f"lesson_edges_{tag}",
        )
        st.caption("cosine: how well the student's edge points the teacher's way (1 = same direction).")
        table(edges, key="learn_edges", filename=f"lesson_edges_{tag}")
    elif step == "virtual":
        figure(
            lfig.views_figure(batch.image.numpy(), batch.image_v.numpy(), batch.labels),
            key="learn_views",
            filename=f"lesson_views_{tag}",
        )
        logits = lesson.logit_frame(batch)
        table(
            logits[["model", "view", "sample", "label", "predicted", "p_top"]],
            key="learn_views",
            filename=f"lesson_predictions_{tag}",
        )
    elif step == "rep":
        counts = lesson.rep_counts(batch)
        m1, m2, m3 = st.columns(3)
        m1.metric("Ordered pairs of the 2B vertices", counts["ordered_pairs"])
        m2.metric("After anti-symmetry", counts["after_antisymmetry"])
        m3.metric("After dropping intra-view", counts["after_intra_view"])
        st.caption(
            f"Measured on the teacher's graph: max |E_uv + E_vu| = {counts['antisymmetry_error']:.1e}."
        )
        rep = lesson.rep_frame(batch)
        figure(lfig.rep_figure(rep, batch.size), key="learn_rep", filename=f"lesson_rep_{tag}")
        table(rep, key="learn_rep", filename=f"lesson_rep_{tag}")
    elif step == "uep":
        uep = lesson.uep_frame(batch, uep_ratio=uep_ratio)
        st.caption(
            f"Rule: {cfg['uep']}; {int((~uep.kept).sum())} of {len(uep)} edges pruned at ratio {uep_ratio:.2f}."
        )
        figure(lfig.uep_figure(uep, batch.size), key="learn_uep", filename=f"lesson_uep_{tag}")
        table(uep.sort_values("rank"), key="learn_uep", filename=f"lesson_uep_{tag}")
    else:
        edges, totals = lesson.loss_summary(batch, uep_ratio=uep_ratio)
        m1, m2, m3, m4 = st.columns(4)
        m1.metric("L_IS (kept edges)", f"{totals['L_IS']:.4f}")
        m2.metric("L_IC", f"{totals['L_IC']:.4f}")
        m3.metric("λ_IS·L_IS + λ_IC·L_IC", f"{totals['loss']:.4f}")
        m4.metric("Kept IS edges", f"{totals['kept_frac']:.0%}")
        st.caption(
            f"Mean of the kept per-edge losses below: {totals['L_IS_from_edges']:.4f} (the same L_IS, by another "
            f"route). δ = {totals['huber_delta']:g}, λ_IS = {totals['lambda_is']:g}, λ_IC = {totals['lambda_ic']:g}."
        )
        figure(lfig.edge_loss_figure(edges, batch.size), key="learn_loss", filename=f"lesson_loss_{tag}")
        figure(lfig.ic_loss_figure(lesson.ic_loss_matrix(batch)), key="learn_ic", filename=f"lesson_ic_{tag}")
        table(edges, key="learn_loss", filename=f"lesson_edge_losses_{tag}")

else:
    st.markdown(
        "The paper's pilot study: corrupt **one** teacher prediction and see which samples' gradients change. "
        "A per-sample loss (KD) keeps the damage on that sample; a relation loss spreads it to every sample "
        "the corrupted one is related to. VRM's unreliable-edge pruning (UEP) can only cut those edges off if it "
        "prunes the corrupted sample's edges: the verdict below says, from the numbers, whether it did."
    )
    preset = spurious.UEP_HELPS_PRESET
    snaps = run.snapshots.sort_values(["kind", "epoch", "batch"], ascending=[False, True, True])
    options = list(snaps[["kind", "epoch", "batch"]].itertuples(index=False, name=None))
    probes = [o for o in options if o[0] == "probe"]

    def _use_preset():
        st.session_state.update(
            learn_sp_batch=probes[-1],
            learn_sp_uep_rule=preset["uep"],
            learn_sp_uep_ratio=preset["uep_ratio"],
            learn_sp_strength=preset["strength"],
            learn_sp_sample=preset["sample"],
        )
        for key in ("learn_sp_wrong", "learn_sp_size"):  # back to their defaults (size: 16, the preset's)
            st.session_state.pop(key, None)

    st.button(
        "Preset: a case where UEP helps",
        key="learn_sp_preset",
        on_click=_use_preset,
        disabled=not probes or preset["uep"] not in spurious.SCORED_RULES,
        help=f"The probe batch of the last epoch (a trained student, so a wrong teacher answer stands out), its first "
        f"{preset['size']} samples, sample {preset['sample']} corrupted, UEP with the {preset['uep']} rule at ratio {preset['uep_ratio']}. On the "
        "demo's VRM run UEP then protects the other samples; on other runs the verdict tells.",
    )
    # widgets the preset sets take their defaults from the session state only (no index=/value= beside it)
    if st.session_state.get("learn_sp_batch") not in options:  # first visit, or another run
        st.session_state["learn_sp_batch"] = options[len(options) - 1 if options[-1][0] == "train" else 0]
    st.session_state.setdefault("learn_sp_uep_rule", cfg["uep"])
    st.session_state.setdefault("learn_sp_uep_ratio", float(cfg["uep_ratio"]))
    st.session_state.setdefault("learn_sp_strength", 1.0)
    c1, c2 = st.columns(2)
    kind, epoch, bno = c1.selectbox(
        "Batch",
        options,
        key="learn_sp_batch",
        format_func=lambda o: (
            f"training batch {o[2]}, epoch {o[1]}" if o[0] == "train" else f"probe batch, epoch {o[1]}"
        ),
    )
    sp = state.load_snapshot(run, kind, epoch, bno)
    if sp is None or not sp.has_teacher:
        st.warning("This snapshot has no teacher logits.")
        st.stop()
    size = c2.slider(
        "Batch size (its first n samples)", 3, sp.batch_size, min(16, sp.batch_size), key="learn_sp_size"
    )
    top = sp.t.argmax(1)
    c1, c2, c3, c4 = st.columns(4)
    sample = c1.selectbox(
        "Corrupted sample",
        list(range(size)),
        key="learn_sp_sample",
        format_func=lambda i: f"{i}: {sp.classes[int(sp.targets[i])]} (teacher: {sp.classes[int(top[i])]})",
    )
    wrong = c2.selectbox(
        "Teacher now says",
        list(range(sp.num_classes)),
        index=int(sp.t[0].argmin()),
        key="learn_sp_wrong",
        format_func=lambda c: sp.classes[c] + (" (its own answer)" if c == int(top[sample]) else ""),
    )
    strength = c3.slider("Strength", 0.0, 1.0, step=0.05, key="learn_sp_strength")
    sp_rule = c4.selectbox("UEP rule of 'VRM with UEP'", list(spurious.SCORED_RULES), key="learn_sp_uep_rule")
    sp_ratio = c4.slider("UEP ratio of 'VRM with UEP'", 0.0, 0.9, step=0.02, key="learn_sp_uep_ratio")
    if wrong == int(top[sample]):
        st.warning(
            "That is the teacher's own answer: swapping it with itself corrupts nothing. Pick another class."
        )
    res = mstate.spurious_experiment(
        sp,
        run.config,
        size=size,
        sample=sample,
        wrong_class=wrong,
        strength=strength,
        uep=sp_rule,
        uep_ratio=sp_ratio,
    )
    if res is None:
        st.stop()
    df, summary, (pruned, total) = res["samples"], res["summary"], res["pruned"]
    verdict = res["verdict"]
    (st.success if verdict["helps"] else st.warning)(verdict["text"], icon=None)
    scored_from = "teacher and student" if sp_rule == "teacher_student" else "the student's predictions"
    st.caption(
        f"At ratio {sp_ratio:.2f}, UEP ({sp_rule}, from {scored_from}; scored with the corrupted teacher) prunes "
        f"{pruned} of the {total} inter-sample edges touching sample {sample}. The class graph (IC) is never "
        "pruned. The training benchmark of the same question (docs/benchmarks.md, 'Robustness to spurious "
        "teacher responses': 20 % of the images with a wrong teacher answer, 3 seeds) agrees with this page "
        "where the page finds help: on Fashion-MNIST, teacher_student is the one rule that loses measurably less "
        "to the corruption than VRM without UEP (1.4 points less, 95 % interval 0.1 to 2.6), at the price of "
        "0.9 points on clean data; the rules that score the student alone (cross_entropy, the default, "
        "joint_entropy, residual) do not protect. On digits no rule is measurably better. This page shows the "
        "mechanism on one batch; only the benchmark says what pruning does to accuracy."
    )
    figure(lfig.spurious_figure(df), key="learn_sp_bars", filename=f"spurious_{run.name}")
    st.caption(
        "Bars: ‖change in ∂L/∂(student logits)‖ per sample caused by the corruption (red: the corrupted sample). "
        "KD, RKD and DIST use the real view; VRM both views. RKD is applied to logits so all losses see the same "
        "corrupted teacher. leak = mean change at the other samples ÷ change at the corrupted one; "
        "disturbance = mean change at the others ÷ their clean gradient norm."
    )
    table(summary, key="learn_sp_summary", filename=f"spurious_summary_{run.name}")
    table(df, key="learn_sp_samples", filename=f"spurious_per_sample_{run.name}")
