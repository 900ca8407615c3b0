"""The words the app uses, in one place: a glossary of VRM's terms and the help text of every option.

The app shows :data:`GLOSSARY` in its sidebar and on the Learn VRM page, and passes :data:`OPTION_HELP`
as the ``help=`` of each option widget, so a term is explained the same way everywhere.
"""

from __future__ import annotations

PAPER = "https://arxiv.org/abs/2502.20760"
PAPER_TITLE = "VRM: Knowledge Distillation via Virtual Relation Matching (Zhang et al., ICCV 2025)"

#: term -> one-paragraph explanation (markdown).
GLOSSARY: dict[str, str] = {
    "IS": "**Inter-sample graph.** One vertex per image view (real view z_m, virtual view z̃_n); an edge is "
    "the unit vector between two vertices' logit vectors, E_mn = (z_m − z̃_n)/‖z_m − z̃_n‖. VRM asks the "
    "student's edges to point where the teacher's do.",
    "IC": "**Inter-class graph.** One vertex per class: column c of the batch's logits (over real and "
    "virtual views); an edge joins two classes. It transfers how the teacher relates classes to each other.",
    "IV": "**Inter-view edges.** The edges between an image's real view and a virtual view (the real→virtual "
    "block of the IS graph); its diagonal links each image to its own augmented copy.",
    "REP": "**Redundant-edge pruning.** Drops the intra-view edges (real–real, virtual–virtual) and keeps "
    "one orientation of each pair (E_vu = −E_uv carries nothing new): the cross-view block remains.",
    "UEP": "**Unreliable-edge pruning.** Each step, scores every IS edge from the student's predictions "
    "at its two endpoints and detaches the highest-scoring fraction (uep_ratio): those edges add nothing to "
    "the loss and get no gradient. The score rule is the `uep` option.",
    "δ": "**Huber δ.** The matching loss is a Huber (smooth-L1) loss between teacher and student edge "
    "elements: quadratic below δ, linear above, so a few large disagreements do not dominate.",
    "CKA": "**Centred kernel alignment** (linear). Similarity of two sets of representations of the same "
    "images, 1 = equal up to rotation and isotropic scale, 0 = unrelated.",
    "virtual view": "An augmented copy of each image (RandAugment, drawn per image and per step); it gives "
    "the graphs more vertices and relations between views.",
    "z-score": "Each logit vector is standardised (mean 0, std 1 over classes) before edges are built, so "
    "the teacher's and student's logit scales do not matter.",
}

#: option -> help text for its widget.
OPTION_HELP: dict[str, str] = {
    "is_edges": "Which inter-sample edges exist. cross_view: the real→virtual block (REP on, the paper's "
    "method); all: every pair of the 2B vertices (no REP); real_only: no virtual views at all.",
    "zscore": "Standardise each logit vector (mean 0, std 1) before building edges.",
    "uep": "How an edge's unreliability is scored from the student's predictions at its endpoints "
    "(cross_entropy: uncertainty plus disagreement; joint_entropy: uncertainty only; teacher_student: "
    "teacher–student divergence; residual: drop single edge elements; none: no pruning).",
    "uep_ratio": "Fraction of the IS edges detached each step: those with the highest UEP scores.",
    "huber_delta": "δ of the Huber matching loss: differences between teacher and student edge elements "
    "below δ are penalised quadratically, above δ linearly (smaller δ: more robust to large disagreements).",
}


def glossary_markdown() -> str:
    """The glossary as one markdown block with the paper link."""
    lines = [f"- **{term}** — {text}" for term, text in GLOSSARY.items()]
    return "\n".join([*lines, "", f"Paper: [{PAPER_TITLE}]({PAPER})"])
