"""Judges calibrated against people, and their position bias measured.

A judge's letter probabilities are not probabilities of what people say: SmolLM2 puts most
of its mass on "tie" where people almost never tie, and GPT-3.5's one-hot verdicts claim a
certainty it has on 70% of items. Where a judge and people judged the same comparisons, a
multinomial logistic regression on the judge's log-probabilities in both orders (six
numbers: log P(a), log P(b), log P(tie) per order, mapped back to the item's own a/b) maps
them to the distribution of the human verdict: Dirichlet calibration (Kull et al. 2019)
with the order kept, so a constant position bias is learned and removed. Every training
comparison is also added with its answers exchanged (the "ab" order of one is the "ba"
order of the other, and the label's a and b swap), so the map treats a and b alike. Its
intercept carries the tie rate people actually use; a schema without ties drops the tie
class, and the calibrated judge then never answers tie.

Pure functions over numpy arrays and judges' verdicts: no Django. scikit-learn is imported
when a calibration is fitted.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field, replace

from routing.judges.base import A, B, TIE, VERDICTS, JudgeVerdict

# Probabilities are clipped here before the log: a one-hot verdict (a parsed [[A]], an
# imported label) then reads as log(0.001) on the classes it did not name.
EPSILON = 1e-3
FEATURES = ("ab_a", "ab_b", "ab_tie", "ba_a", "ba_b", "ba_tie")
RELIABILITY_BINS = 10
MIN_CALIBRATION_ITEMS = 20  # fewer human-judged comparisons fit noise, not the judge
FOLDS = 5


class CalibrationError(ValueError):
    """Too few or unusable examples to fit a calibration, named in the message."""


def _order_probs(verdict: JudgeVerdict) -> list[tuple[float, float, float]]:
    """(p_a, p_b, p_tie) of each order as the judge said it, before any calibration."""
    raw = verdict.uncalibrated or {}
    orders = [(o.p_a, o.p_b, o.p_tie) for o in verdict.orders if o.p_a is not None]
    if orders:
        return orders
    if raw.get("p_a") is not None:
        return [(raw["p_a"], raw["p_b"], raw["p_tie"])]
    if verdict.p_a is not None and not raw:
        return [(verdict.p_a, verdict.p_b, verdict.p_tie)]
    said = raw.get("verdict", verdict.verdict)
    return [tuple(float(said == v) for v in VERDICTS)]


def features(verdict: JudgeVerdict) -> list[float]:
    """The six log-probabilities the calibration reads; one known order fills both slots
    (a reward model, an imported verdict: they have no position)."""
    orders = _order_probs(verdict)
    if len(orders) == 1:
        orders = orders * 2
    return [math.log(max(p, EPSILON)) for order in orders[:2] for p in order]


def swapped_features(row: list[float]) -> list[float]:
    """The features of the same comparison with its answers exchanged."""
    ab_a, ab_b, ab_tie, ba_a, ba_b, ba_tie = row
    return [ba_b, ba_a, ba_tie, ab_b, ab_a, ab_tie]


SWAP_LABEL = {A: B, B: A, TIE: TIE}


def raw_probabilities(verdict: JudgeVerdict) -> tuple[float, float, float]:
    """The judge's own (p_a, p_b, p_tie): its orders averaged, or its one-hot verdict."""
    orders = _order_probs(verdict)
    return tuple(sum(order[i] for order in orders) / len(orders) for i in range(3))


# --- scores -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReliabilityBin:
    low: float
    high: float
    count: int
    confidence: float | None  # mean top-verdict probability in the bin
    accuracy: float | None  # share of the bin whose top verdict was the human's


@dataclass(frozen=True)
class CalibrationScores:
    """How well probabilities match human verdicts: Brier (sum over the three verdicts of the
    squared error, 0 best, 2 worst), log loss (natural log), expected calibration error of
    the top verdict over 10 equal-width bins, and accuracy of the top verdict."""

    n: int
    brier: float
    log_loss: float
    ece: float
    accuracy: float
    reliability: list[ReliabilityBin]


def score_probabilities(probabilities: list[tuple[float, float, float]], labels: list[str]) -> CalibrationScores:
    import numpy as np

    if not labels:
        raise CalibrationError("no labelled verdicts to score")
    probs = np.asarray(probabilities, dtype=float)  # shape (n, 3): a, b, tie
    truth = np.zeros_like(probs)
    truth[np.arange(len(labels)), [VERDICTS.index(label) for label in labels]] = 1.0
    top = probs.argmax(axis=1)
    confidence = probs.max(axis=1)
    correct = truth[np.arange(len(labels)), top] == 1.0
    bins, ece = [], 0.0
    edges = np.linspace(0.0, 1.0, RELIABILITY_BINS + 1)
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence > low) & (confidence <= high) if low > 0 else (confidence <= high)
        count = int(inside.sum())
        if count:
            ece += count / len(labels) * abs(confidence[inside].mean() - correct[inside].mean())
        bins.append(ReliabilityBin(float(low), float(high), count,
                                   float(confidence[inside].mean()) if count else None,
                                   float(correct[inside].mean()) if count else None))
    return CalibrationScores(
        n=len(labels),
        brier=float(((probs - truth) ** 2).sum(axis=1).mean()),
        log_loss=float(-np.log(np.clip((probs * truth).sum(axis=1), 1e-12, None)).mean()),
        ece=float(ece),
        accuracy=float(correct.mean()),
        reliability=bins,
    )


# --- the calibration ----------------------------------------------------------------------


@dataclass(frozen=True)
class Calibration:
    """A fitted map from a judge's raw letter log-probabilities to people's verdicts.

    ``coef`` has shape (classes, 6) over FEATURES and ``intercept`` (classes,); ``classes``
    is (a, b, tie), or (a, b) for a schema without ties. ``before`` and ``after`` score the
    raw and calibrated probabilities on the training comparisons, ``after`` cross-fitted
    (each fold calibrated by a map fitted without it), so it is not flattered.
    """

    classes: tuple[str, ...]
    coef: list[list[float]]
    intercept: list[float]
    allow_ties: bool
    n: int
    human_tie_rate: float
    before: CalibrationScores | None = None
    after: CalibrationScores | None = None
    label: str = ""  # e.g. "calibrated on 116 comparisons of project 3"

    def probabilities(self, verdict: JudgeVerdict) -> tuple[float, float, float]:
        """Calibrated (p_a, p_b, p_tie) of one verdict; p_tie is 0 without the tie class."""
        return self.probabilities_of([features(verdict)])[0]

    def probabilities_of(self, rows: list[list[float]]) -> list[tuple[float, float, float]]:
        import numpy as np

        logits = np.asarray(rows) @ np.asarray(self.coef).T + np.asarray(self.intercept)  # shape (n, classes)
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        by_class = [dict(zip(self.classes, row)) for row in probs.tolist()]
        return [(p.get(A, 0.0), p.get(B, 0.0), p.get(TIE, 0.0)) for p in by_class]

    def apply(self, verdict: JudgeVerdict) -> JudgeVerdict:
        """The verdict with calibrated probabilities, its top verdict and confidence; the raw
        ones kept in ``uncalibrated``. A verdict without a usable answer is left as it is."""
        if not verdict.usable:
            return verdict
        p_a, p_b, p_tie = self.probabilities(verdict)
        probs = {A: p_a, B: p_b, TIE: p_tie}
        said = max(self.classes, key=lambda v: probs[v])
        raw = verdict.uncalibrated or {"verdict": verdict.verdict, "p_a": verdict.p_a, "p_b": verdict.p_b,
                                       "p_tie": verdict.p_tie, "confidence": verdict.confidence}
        return replace(verdict, verdict=said, p_a=p_a, p_b=p_b, p_tie=p_tie, confidence=probs[said],
                       uncalibrated=raw, calibration=self.label or f"calibrated on {self.n} comparisons")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Calibration:
        def scores(value):
            if not value:
                return None
            return CalibrationScores(**{**value, "reliability": [ReliabilityBin(**b) for b in value["reliability"]]})

        return cls(classes=tuple(data["classes"]), coef=data["coef"], intercept=data["intercept"],
                   allow_ties=data["allow_ties"], n=data["n"], human_tie_rate=data["human_tie_rate"],
                   before=scores(data.get("before")), after=scores(data.get("after")), label=data.get("label", ""))


def _fit_map(rows: list[list[float]], labels: list[str], classes: tuple[str, ...], regularisation: float):
    from sklearn.linear_model import LogisticRegression

    x = rows + [swapped_features(row) for row in rows]
    y = labels + [SWAP_LABEL[label] for label in labels]
    model = LogisticRegression(C=regularisation, max_iter=2000)
    model.fit(x, y)
    fitted = [str(c) for c in model.classes_]
    coef = [[0.0] * len(FEATURES) for _ in classes]
    intercept = [-30.0] * len(classes)  # a class people never used in training stays (almost) never
    if len(fitted) == 2:  # scikit-learn's binary form: one row of weights for the second class
        half = model.coef_[0] / 2
        rows_of = {fitted[0]: (-half, -model.intercept_[0] / 2), fitted[1]: (half, model.intercept_[0] / 2)}
    else:
        rows_of = {c: (model.coef_[i], model.intercept_[i]) for i, c in enumerate(fitted)}
    for i, c in enumerate(classes):
        if c in rows_of:
            coef[i] = [float(w) for w in rows_of[c][0]]
            intercept[i] = float(rows_of[c][1])
    return coef, intercept


def fit_calibration(verdicts: list[JudgeVerdict], human_verdicts: list[str], allow_ties: bool = True,
                    regularisation: float = 1.0, label: str = "", folds: int = FOLDS,
                    score: bool = True) -> Calibration:
    """Fit the calibration of one judge on comparisons people judged too.

    ``human_verdicts[i]`` is what people said of ``verdicts[i]`` (a, b or tie: a majority,
    or one verdict each; both_bad reads as tie). Verdicts without a usable answer are left
    out (they go to people anyway). Without ties, tie-labelled comparisons are left out too.
    """
    pairs = [(v, h) for v, h in zip(verdicts, human_verdicts, strict=True) if v.usable and h in VERDICTS]
    if not allow_ties:
        pairs = [(v, h) for v, h in pairs if h != TIE]
    if len(pairs) < MIN_CALIBRATION_ITEMS:
        raise CalibrationError(f"{len(pairs)} comparisons judged by both the judge and people; a calibration "
                               f"needs at least {MIN_CALIBRATION_ITEMS}")
    rows = [features(v) for v, _ in pairs]
    labels = [h for _, h in pairs]
    classes = (A, B, TIE) if allow_ties else (A, B)
    coef, intercept = _fit_map(rows, labels, classes, regularisation)
    calibration = Calibration(classes, coef, intercept, allow_ties, len(pairs),
                              human_tie_rate=sum(h == TIE for h in labels) / len(labels), label=label)
    if not score:  # a refit inside a simulation loop: the map alone
        return calibration
    before = score_probabilities([raw_probabilities(v) for v, _ in pairs], labels)
    after = score_probabilities(cross_fitted(rows, labels, classes, regularisation, folds), labels)
    return replace(calibration, before=before, after=after)


def cross_fitted(rows, labels, classes, regularisation: float, folds: int) -> list[tuple[float, float, float]]:
    """Each comparison's calibrated probabilities from a map fitted on the other folds."""
    out: list = [None] * len(rows)
    for fold in range(folds):
        held = [i for i in range(len(rows)) if i % folds == fold]
        train = [i for i in range(len(rows)) if i % folds != fold]
        coef, intercept = _fit_map([rows[i] for i in train], [labels[i] for i in train], classes, regularisation)
        fitted = Calibration(classes, coef, intercept, TIE in classes, len(train), 0.0)
        for i, probs in zip(held, fitted.probabilities_of([rows[i] for i in held])):
            out[i] = probs
    return out


def without_ties(verdict: JudgeVerdict) -> JudgeVerdict:
    """A verdict for a schema without ties, when no calibration exists yet: the tie mass is
    dropped and a and b renormalised, so the judge never answers tie."""
    if not verdict.usable or verdict.p_a is None:
        return verdict if verdict.verdict != TIE else replace(verdict, verdict="unparsable",
                                                              detail="a tie, in a schema without ties")
    total = verdict.p_a + verdict.p_b
    p_a = verdict.p_a / total if total > 0 else 0.5
    said = A if p_a >= 0.5 else B
    raw = verdict.uncalibrated or {"verdict": verdict.verdict, "p_a": verdict.p_a, "p_b": verdict.p_b,
                                   "p_tie": verdict.p_tie, "confidence": verdict.confidence}
    return replace(verdict, verdict=said, p_a=p_a, p_b=1 - p_a, p_tie=0.0, confidence=max(p_a, 1 - p_a),
                   uncalibrated=raw, calibration=verdict.calibration or "ties dropped (schema without ties)")


# --- position bias ------------------------------------------------------------------------


@dataclass(frozen=True)
class BiasRow:
    n: int  # comparisons judged in both orders with probabilities
    flip_rate: float  # the a-over-b preference changed with the order
    first_shown_rate: float  # share of single orders that preferred the answer shown first
    a_rate_one_order: float  # share called a from the "ab" order alone
    a_rate_combined: float  # share called a from both orders combined (a vs b only)


@dataclass(frozen=True)
class PositionBias:
    overall: BiasRow | None
    by_category: dict[str, BiasRow] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _bias_row(verdicts: list[JudgeVerdict]) -> BiasRow:
    flips = first = a_one = a_both = 0
    for verdict in verdicts:
        ab, ba = verdict.orders[0], verdict.orders[1]
        ab_prefers_a, ba_prefers_a = ab.p_a > ab.p_b, ba.p_a > ba.p_b
        flips += ab_prefers_a != ba_prefers_a
        first += ab_prefers_a + (not ba_prefers_a)  # in "ba" the first shown is b
        a_one += ab_prefers_a
        a_both += (ab.p_a + ba.p_a) > (ab.p_b + ba.p_b)
    n = len(verdicts)
    return BiasRow(n, flips / n, first / (2 * n), a_one / n, a_both / n)


def position_bias(verdicts: list[JudgeVerdict], categories: list[str] | None = None) -> PositionBias:
    """How often a judge's preference flips with the order, overall and per category.

    Only verdicts with probabilities in both orders count (a reward model or an imported
    verdict has no order). Combining both orders cancels a constant position bias: compare
    ``a_rate_one_order`` (the bias left in) with ``a_rate_combined``.
    """
    categories = categories or [""] * len(verdicts)
    both = [(v, c) for v, c in zip(verdicts, categories, strict=True)
            if len(v.orders) == 2 and all(o.p_a is not None for o in v.orders)]
    if not both:
        return PositionBias(None, {})
    grouped = defaultdict(list)
    for verdict, category in both:
        grouped[category or "none"].append(verdict)
    return PositionBias(_bias_row([v for v, _ in both]),
                        {category: _bias_row(group) for category, group in sorted(grouped.items())})
