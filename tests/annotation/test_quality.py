"""The quality math: agreement coefficients against published worked examples and
independent implementations (krippendorff, statsmodels, scikit-learn, crowd-kit), and
recovery of known truth from simulated crowds. No database."""

import io
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annotation.quality import (
    ADVERSARIAL,
    FLIPS_SIDES,
    MISSING,
    SPAMMER,
    DawidSkene,
    JudgmentTable,
    ReliabilityThresholds,
    agreement,
    annotator_reliability,
    assess,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
    majority_vote,
    pairwise_cohen_kappa,
)
from annotation.quality.simulation import accurate, random_clicker, side_flipper, simulate_crowd

# --- published worked examples ------------------------------------------------------------

# Wikipedia, "Fleiss' kappa", worked example: 10 subjects, 14 raters, 5 categories.
WIKIPEDIA_FLEISS = np.array(
    [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
)

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", the example with
# missing data: 4 coders, 12 units, nominal alpha = 0.743.
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]


def table_from_coders(coders) -> JudgmentTable:
    records = [
        (unit, f"coder-{c}", value)
        for c, row in enumerate(coders)
        for unit, value in enumerate(row)
        if value is not None
    ]
    return JudgmentTable.from_records(records)


def test_fleiss_kappa_reproduces_the_wikipedia_example():
    assert fleiss_kappa(WIKIPEDIA_FLEISS) == pytest.approx(0.20993, abs=5e-5)


def test_krippendorff_alpha_reproduces_krippendorffs_example_with_missing_data():
    table = table_from_coders(KRIPPENDORFF_2011)
    assert krippendorff_alpha(table.counts()) == pytest.approx(0.743, abs=5e-4)


def test_cohen_kappa_reproduces_the_wikipedia_example():
    # 50 proposals: both yes 20, A yes B no 5, A no B yes 10, both no 15 -> kappa 0.4.
    assert cohen_kappa(np.array([[20, 5], [10, 15]])) == pytest.approx(0.4)


# --- against independent implementations --------------------------------------------------


def random_wide(rng, n_items, n_raters, n_verdicts, missing=0.0) -> np.ndarray:
    truth = rng.integers(0, n_verdicts, n_items)
    noise = rng.integers(0, n_verdicts, (n_items, n_raters))
    matrix = np.where(rng.random((n_items, n_raters)) < 0.6, truth[:, None], noise)
    matrix[rng.random(matrix.shape) < missing] = MISSING
    return matrix


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fleiss_kappa_matches_statsmodels_with_constant_raters(seed):
    from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss

    matrix = random_wide(np.random.default_rng(seed), 300, 5, 4)
    table = JudgmentTable.from_wide(matrix, annotators=range(5), verdicts=range(4))
    assert fleiss_kappa(table.counts()) == pytest.approx(statsmodels_fleiss(table.counts()), abs=1e-12)
    assert fleiss_kappa(WIKIPEDIA_FLEISS) == pytest.approx(statsmodels_fleiss(WIKIPEDIA_FLEISS), abs=1e-12)


def test_fleiss_kappa_with_uneven_raters_averages_each_items_own_agreement():
    # Item 1: 3 raters, all "x" (agreement 1). Item 2: 2 raters, x and y (agreement 0).
    # Pooled shares: x 4/5, y 1/5 -> chance 0.68; observed mean 0.5 -> (0.5-0.68)/0.32.
    counts = np.array([[3, 0], [1, 1]])
    assert fleiss_kappa(counts) == pytest.approx((0.5 - 0.68) / 0.32)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_krippendorff_alpha_matches_the_krippendorff_package_with_missing_data(seed):
    import krippendorff

    matrix = random_wide(np.random.default_rng(seed), 200, 6, 3, missing=0.5)
    table = JudgmentTable.from_wide(matrix, annotators=range(6), verdicts=range(3))
    reliability_data = np.where(matrix.T == MISSING, np.nan, matrix.T.astype(float))
    expected = krippendorff.alpha(reliability_data=reliability_data, level_of_measurement="nominal")
    assert krippendorff_alpha(table.counts()) == pytest.approx(expected, abs=1e-10)


def test_pairwise_cohen_kappa_matches_scikit_learn_for_every_pair():
    from sklearn.metrics import cohen_kappa_score

    matrix = random_wide(np.random.default_rng(7), 150, 4, 3, missing=0.3)
    table = JudgmentTable.from_wide(matrix, annotators=["w", "x", "y", "z"], verdicts=["a", "b", "tie"])
    pairs = pairwise_cohen_kappa(table)
    assert [(p.a, p.b) for p in pairs] == [("w", "x"), ("w", "y"), ("w", "z"), ("x", "y"), ("x", "z"), ("y", "z")]
    for pair in pairs:
        i, j = table.annotators.index(pair.a), table.annotators.index(pair.b)
        both = (matrix[:, i] != MISSING) & (matrix[:, j] != MISSING)
        assert pair.n == both.sum()
        assert pair.kappa == pytest.approx(cohen_kappa_score(matrix[both, i], matrix[both, j]), abs=1e-12)
        assert pair.agreement == pytest.approx(np.mean(matrix[both, i] == matrix[both, j]))


def test_pairs_that_never_met_are_left_out():
    table = JudgmentTable.from_records([(1, "x", "a"), (1, "y", "a"), (2, "z", "b"), (2, "y", "b")])
    assert {(p.a, p.b) for p in pairwise_cohen_kappa(table)} == {("x", "y"), ("y", "z")}


def test_undefined_coefficients_are_nan_and_null_in_json():
    # Everyone always says "a": chance agreement is already perfect, kappa is 0/0.
    table = JudgmentTable.from_records([(c, who, "a") for c in range(5) for who in ("x", "y")])
    report = agreement(table)
    assert np.isnan(report.fleiss_kappa) and np.isnan(report.krippendorff_alpha)
    assert np.isnan(report.cohen_kappa[0].kappa)
    data = report.to_dict()
    assert data["fleiss_kappa"] is None and data["cohen_kappa"][0]["kappa"] is None
    json.dumps(data)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=2, max_size=40),
    st.permutations(range(4)),
)
def test_kappas_do_not_depend_on_what_the_verdicts_are_called(pairs, permutation):
    contingency = np.zeros((4, 4))
    for x, y in pairs:
        contingency[x, y] += 1
    renamed = contingency[np.ix_(permutation, permutation)]
    assert cohen_kappa(renamed) == pytest.approx(cohen_kappa(contingency), nan_ok=True)
    counts = np.stack([np.bincount([x, y], minlength=4) for x, y in pairs])
    assert fleiss_kappa(counts[:, permutation]) == pytest.approx(fleiss_kappa(counts), nan_ok=True)
    alpha = krippendorff_alpha(counts[:, permutation])
    assert alpha == pytest.approx(krippendorff_alpha(counts), nan_ok=True)
    assert np.isnan(alpha) or alpha <= 1.0 + 1e-12


# --- recovery: agreement --------------------------------------------------------------------


def test_agreement_coefficients_recover_the_kappa_of_a_known_rating_process():
    # Each rating copies the truth with probability r, else is drawn from the verdict
    # shares: then every chance-corrected coefficient has population value r^2.
    rng = np.random.default_rng(3)
    r, shares, n_items, n_raters = 0.7, np.array([0.45, 0.45, 0.1]), 20_000, 3
    truth = rng.choice(3, n_items, p=shares)
    draws = rng.choice(3, (n_items, n_raters), p=shares)
    matrix = np.where(rng.random((n_items, n_raters)) < r, truth[:, None], draws)
    table = JudgmentTable.from_wide(matrix, annotators=range(n_raters), verdicts=["a", "b", "tie"])
    report = agreement(table)
    assert report.fleiss_kappa == pytest.approx(r**2, abs=0.02)
    assert report.krippendorff_alpha == pytest.approx(r**2, abs=0.02)
    for pair in report.cohen_kappa:
        assert pair.kappa == pytest.approx(r**2, abs=0.03)


# --- the table --------------------------------------------------------------------------------


def test_a_table_refuses_two_judgments_by_one_annotator_on_one_comparison():
    with pytest.raises(ValueError, match="more than once"):
        JudgmentTable.from_records([(1, "x", "a"), (1, "x", "b")])


def test_a_table_refuses_verdicts_outside_the_given_categories():
    with pytest.raises(ValueError, match="not among"):
        JudgmentTable.from_records([(1, "x", "maybe")], verdicts=["a", "b"])


def test_from_records_from_pandas_and_from_wide_agree():
    records = [(10, "x", "a"), (10, "y", "b"), (11, "x", "b"), (12, "y", "a")]
    from_records = JudgmentTable.from_records(records, verdicts=["a", "b"])
    frame = pd.DataFrame(records, columns=["item", "who", "said"])
    from_pandas = JudgmentTable.from_pandas(frame, "item", "who", "said", verdicts=["a", "b"])
    wide = from_records.wide()
    from_wide = JudgmentTable.from_wide(wide, annotators=("x", "y"), verdicts=("a", "b"), comparisons=(10, 11, 12))
    for table in (from_pandas, from_wide):
        assert np.array_equal(table.counts(), from_records.counts())
    assert from_records.counts().tolist() == [[1, 1], [0, 1], [1, 0]]


# --- majority vote ----------------------------------------------------------------------------


def test_majority_vote_leaves_ties_in_the_count_undecided():
    table = JudgmentTable.from_records(
        [(1, "x", "a"), (1, "y", "a"), (1, "z", "b"), (2, "x", "a"), (2, "y", "b")], verdicts=["a", "b"]
    )
    result = majority_vote(table)
    assert result.label.tolist() == [0, MISSING]
    assert result.confidence.tolist() == pytest.approx([2 / 3, 0.0])
    assert result.n_judgments.tolist() == [3, 2]
    assert result.n_decided == 1
    weighted = majority_vote(table, weights=np.array([1.0, 1.0, 1.0, 1.0, 3.0]))
    assert weighted.verdict_of(1) == "b"


def test_majority_vote_recovers_truth_at_the_binomial_rate():
    # Three independent annotators right 80% of the time on two verdicts: the majority is
    # right with probability 0.8^3 + 3 * 0.8^2 * 0.2 = 0.896.
    crowd = simulate_crowd([accurate(0.8, 2)] * 3, 20_000, 3, prior=(0.5, 0.5), verdicts=("a", "b"), seed=4)
    result = majority_vote(crowd.judgments)
    assert np.mean(result.label == crowd.truth) == pytest.approx(0.896, abs=0.01)


# --- Dawid-Skene ------------------------------------------------------------------------------


def test_dawid_skene_matches_crowd_kit():
    from crowdkit.aggregation import DawidSkene as CrowdKitDawidSkene

    # given a crowd with a (noisy) flipper and a clicker who never says tie; no one is
    # exactly deterministic, where the answer would hinge on each library's log(0) floor
    noisy_flipper = 0.9 * side_flipper() + 0.1 * accurate(1 / 3)
    crowd = simulate_crowd(
        [accurate(0.9), accurate(0.75), random_clicker(), noisy_flipper, accurate(0.6)], 300, 3, seed=5
    )
    table = crowd.judgments
    frame = pd.DataFrame({"task": table.comparison, "worker": table.annotator, "label": table.verdict})
    # when both run the same 60 EM iterations from majority-vote shares, without smoothing
    # (a fixed count: the two stopping rules differ, and crowd-kit's, on its evidence
    # bound, can stop before the optimum)
    reference = CrowdKitDawidSkene(n_iter=60, tol=-1.0).fit(frame)
    ours = DawidSkene(smoothing=0.0, tol=0.0, max_iter=60).fit(table)
    assert ours.n_iter == len(reference.loss_history_) == 60
    # then posteriors, priors and confusion matrices agree
    labels = range(table.n_verdicts)
    posterior = reference.probas_.sort_index().reindex(columns=labels).to_numpy()
    assert np.abs(posterior - ours.posterior).max() < 1e-5
    assert np.abs(reference.priors_.reindex(labels).to_numpy() - ours.prior).max() < 1e-6
    for a in range(table.n_annotators):
        # crowd-kit's errors: rows are the verdict given, columns the truth; verdicts an
        # annotator never gave have no row.
        errors = reference.errors_.loc[a].reindex(index=labels, columns=labels).fillna(0.0).to_numpy()
        assert np.abs(errors.T - ours.confusion[a]).max() < 1e-5
    assert np.array_equal(reference.labels_.sort_index().to_numpy(), ours.aggregate().label)


def test_dawid_skene_recovers_known_confusion_matrices_and_prior():
    confusions = [
        np.array([[0.9, 0.05, 0.05], [0.1, 0.85, 0.05], [0.2, 0.2, 0.6]]),
        np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8]]),
        np.array([[0.8, 0.15, 0.05], [0.05, 0.9, 0.05], [0.3, 0.3, 0.4]]),
        accurate(0.85),
        accurate(0.75),
    ]
    crowd = simulate_crowd(confusions, 8000, 4, prior=(0.4, 0.4, 0.2), seed=6)
    fitted = DawidSkene().fit(crowd.judgments)
    assert fitted.converged
    assert np.abs(fitted.prior - crowd.prior).max() < 0.02
    assert np.abs(fitted.confusion - crowd.confusions).max() < 0.05
    assert np.abs(fitted.reliability - crowd.true_accuracy).max() < 0.02


def test_gold_verdicts_pin_posteriors_and_score_annotators():
    crowd = simulate_crowd([accurate(0.9), accurate(0.6), random_clicker()], 400, 2, seed=8)
    gold = np.full(crowd.judgments.n_comparisons, MISSING)
    gold[:100] = crowd.truth[:100]
    fitted = DawidSkene().fit(crowd.judgments, gold=gold)
    assert np.array_equal(fitted.posterior[:100].argmax(axis=1), crowd.truth[:100])
    assert np.allclose(fitted.posterior[:100].max(axis=1), 1.0)
    rows = annotator_reliability(fitted, gold=gold)
    assert rows[0].gold_accuracy > 0.8 > rows[1].gold_accuracy > rows[2].gold_accuracy
    assert all(row.n_gold > 0 for row in rows)


@pytest.mark.parametrize("verdicts", [["a", "b"], None])
def test_an_empty_table_gives_an_empty_report(verdicts):
    report = assess(JudgmentTable.from_records([], verdicts=verdicts))
    data = report.to_dict()
    assert data["n_judgments"] == 0 and data["annotators"] == [] and data["n_aggregated"] == 0
    assert data["krippendorff_alpha"] is None and data["cohen_kappa"] == []
    json.dumps(data)


# --- the simulated crowd ----------------------------------------------------------------------

CROWD = {
    "good-95": accurate(0.95),
    "good-90": accurate(0.90),
    "good-85": accurate(0.85),
    "good-80": accurate(0.80),
    "clicker-even": random_clicker((0.5, 0.5, 0.0)),
    "clicker-ties": random_clicker((0.4, 0.4, 0.2)),
    "flipper": side_flipper(),
}


@pytest.fixture(scope="module")
def crowd_report():
    crowd = simulate_crowd(list(CROWD.values()), 3000, 3, names=list(CROWD), seed=11)
    return crowd, assess(crowd.judgments)


def test_reliability_ranks_annotators_by_their_true_accuracy(crowd_report):
    crowd, report = crowd_report
    from scipy.stats import spearmanr

    estimated = np.array([row.reliability for row in report.annotators])
    assert spearmanr(estimated, crowd.true_accuracy).statistic > 0.95
    names = [row.annotator for row in sorted(report.annotators, key=lambda row: -row.reliability)]
    assert names[:4] == ["good-95", "good-90", "good-85", "good-80"]
    assert names[-1] == "flipper"
    assert np.abs(estimated - crowd.true_accuracy).max() < 0.03
    assert all(0.0 <= row.reliability <= 1.0 for row in report.annotators)


def test_spammers_and_the_adversary_are_flagged_and_no_one_else(crowd_report):
    _, report = crowd_report
    flags = {row.annotator: set(row.flags) for row in report.annotators}
    assert flags["clicker-even"] == {SPAMMER}
    assert flags["clicker-ties"] == {SPAMMER}
    assert flags["flipper"] == {ADVERSARIAL, FLIPS_SIDES}
    assert all(not flags[name] for name in CROWD if name.startswith("good"))


def test_dawid_skene_labels_beat_majority_vote(crowd_report):
    crowd, report = crowd_report
    dawid_skene = report.aggregate
    # Majority vote leaves three-way splits undecided; count those as wrong, as a trainer
    # that needs a label would.
    majority_accuracy = np.mean(report.majority.label == crowd.truth)
    dawid_skene_accuracy = np.mean(dawid_skene.label == crowd.truth)
    assert dawid_skene_accuracy > majority_accuracy + 0.1
    assert dawid_skene_accuracy > 0.9
    decided = report.majority.decided
    assert np.mean(dawid_skene.label[decided] == crowd.truth[decided]) > np.mean(
        report.majority.label[decided] == crowd.truth[decided]
    )


def test_judgment_weights_are_posteriors_that_the_verdict_is_right(crowd_report):
    crowd, report = crowd_report
    table, fitted = crowd.judgments, report.dawid_skene
    weight = fitted.judgment_weight
    assert weight.shape == (table.n_judgments,) and ((0 <= weight) & (weight <= 1)).all()
    right = table.verdict == crowd.truth[table.comparison]
    # Calibration: among judgments weighted ~w, a share ~w is right.
    for low, high in [(0.0, 0.2), (0.8, 1.01)]:
        band = (weight >= low) & (weight < high)
        assert low - 0.05 <= right[band].mean() <= high + 0.05
    mean_weight = {name: weight[table.annotator == i].mean() for i, name in enumerate(table.annotators)}
    assert mean_weight["good-95"] > mean_weight["good-80"] > mean_weight["clicker-even"] > mean_weight["flipper"]


def test_report_serialises_to_the_documented_json(crowd_report):
    _, report = crowd_report
    data = json.loads(json.dumps(report.to_dict()))
    assert {"krippendorff_alpha", "fleiss_kappa", "cohen_kappa", "annotators", "n_aggregated"} <= set(data)
    assert data["n_aggregated"] == 3000
    assert all({"a", "b", "kappa", "n"} <= set(pair) for pair in data["cohen_kappa"])
    row = data["annotators"][0]
    assert {"annotator", "n_judgments", "reliability", "flags", "agreement", "gold_accuracy"} <= set(row)


def test_flags_wait_for_enough_judgments():
    crowd = simulate_crowd([accurate(0.9)] * 3 + [side_flipper()], 20, 2, seed=12)
    report = assess(crowd.judgments, thresholds=ReliabilityThresholds(min_judgments=1000))
    assert all(not row.flags for row in report.annotators)


# --- the database side: which judgments count, and `project_quality` -------------------------


def crowd_rows(crowd, prefix="item", gold_items=0, prompt=None):
    """Duet import rows carrying a simulated crowd's judgments; the first `gold_items`
    comparisons carry their true verdict as gold."""
    table = crowd.judgments
    rows = []
    for c in range(table.n_comparisons):
        mine = np.flatnonzero(table.comparison == c)
        row = {
            "id": f"{prefix}-{c}",
            "prompt": prompt(c) if prompt else f"Question {c}: what is {c} + {c}?",
            "a": {"system": "sys-left", "text": f"It is {2 * c}."},
            "b": {"system": "sys-right", "text": f"It is {2 * c + 1}, I think."},
            "judgments": [
                {"annotator": table.annotators[table.annotator[j]], "verdict": table.verdicts[table.verdict[j]],
                 "rationale": f"because {c}"}
                for j in mine
            ],
        }  # fmt: skip
        if c < gold_items:
            row["gold"] = table.verdicts[crowd.truth[c]]
            row["check"] = "gold"
        rows.append(row)
    return rows


SMALL_CROWD = {"ann-good": accurate(0.95), "ann-fair": accurate(0.85), "ann-ok": accurate(0.8),
               "ann-clicker": random_clicker(), "ann-flipper": side_flipper()}  # fmt: skip


@pytest.fixture
def crowd_project(make_project):
    crowd = simulate_crowd(list(SMALL_CROWD.values()), 200, 3, names=list(SMALL_CROWD), seed=21)
    project = make_project(name="crowd", rows=crowd_rows(crowd, gold_items=20))
    return project, crowd


@pytest.mark.django_db
def test_project_quality_command_prints_the_documented_json(crowd_project):
    from django.core.management import call_command

    project, crowd = crowd_project
    out = io.StringIO()
    call_command("project_quality", "crowd", "--format", "json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["project"] == "crowd"
    assert data["n_judgments"] == crowd.judgments.n_judgments
    assert 0.0 < data["krippendorff_alpha"] < 1.0 and 0.0 < data["fleiss_kappa"] < 1.0
    assert len(data["cohen_kappa"]) == 10
    assert all(set(pair) >= {"a", "b", "kappa", "n"} for pair in data["cohen_kappa"])
    rows = {row["annotator"]: row for row in data["annotators"]}
    # Imported annotators appear under the import's names, as external humans.
    assert set(rows) == set(SMALL_CROWD)
    assert all(row["kind"] == "external_human" for row in rows.values())
    assert rows["ann-good"]["reliability"] > rows["ann-ok"]["reliability"] > rows["ann-clicker"]["reliability"]
    assert rows["ann-flipper"]["reliability"] < 0.3
    assert "adversarial" in rows["ann-flipper"]["flags"] and "spammer" in rows["ann-clicker"]["flags"]
    assert rows["ann-good"]["flags"] == []
    assert all(0.0 <= row["reliability"] <= 1.0 for row in rows.values())
    # Gold items score every annotator who met one.
    assert rows["ann-good"]["gold_accuracy"] > rows["ann-flipper"]["gold_accuracy"]
    assert data["n_aggregated"] == 200


@pytest.mark.django_db
def test_project_quality_table_and_errors(crowd_project):
    from django.core.management import CommandError, call_command

    out = io.StringIO()
    call_command("project_quality", "crowd", stdout=out)
    text = out.getvalue()
    assert "Krippendorff's alpha" in text and "ann-flipper" in text and "adversarial" in text
    with pytest.raises(CommandError, match="no project named"):
        call_command("project_quality", "nope")


@pytest.mark.django_db
def test_only_current_judgments_count_and_adjudication_keeps_what_annotators_said(make_project, make_user):
    from annotation import actions
    from annotation.export import Selection, load_judgments
    from arena.models import Judge, JudgeKind, Judgment

    # given three annotators, one of whom corrects herself, and then an adjudication
    rows = [
        {"id": f"q{i}", "prompt": f"p{i}", "a": {"system": "s1", "text": "x"}, "b": {"system": "s2", "text": "y"},
         "judgments": [{"annotator": "ann", "verdict": "a"}, {"annotator": "bob", "verdict": "a"},
                       {"annotator": "cy", "verdict": "b"}]}
        for i in range(2)
    ]  # fmt: skip
    project = make_project(name="current", rows=rows)
    ann = Judge.objects.get(kind=JudgeKind.EXTERNAL_HUMAN, name="ann")
    first = Judgment.objects.get(judge=ann, comparison__project_items__external_id="q0")
    Judgment.objects.create(comparison=first.comparison, judge=ann, verdict="tie", supersedes=first)
    item = project.items.get(external_id="q1")
    actions.adjudicate(item, make_user("rev", "researcher"), "a")
    selection = Selection(project=project)

    # when the two readings are taken
    labels = load_judgments(selection).table
    quality = load_judgments(selection, for_quality=True).table

    # then a self-correction replaces the original in both
    def said(table, external_id):
        comparison_id = project.items.get(external_id=external_id).comparison_id
        rows = np.flatnonzero(np.asarray(table.comparisons)[table.comparison] == comparison_id)
        return sorted((table.annotators[table.annotator[r]], table.verdicts[table.verdict[r]]) for r in rows)

    assert ("ann", "tie") in said(labels, "q0") and ("ann", "a") not in said(labels, "q0")
    assert said(quality, "q0") == said(labels, "q0")
    # and the adjudication decides the label (one reviewer judgment, however many it overruled) ...
    assert said(labels, "q1") == [("ann", "a"), ("bob", "a"), ("rev", "a")]
    # ... while agreement still sees what the annotators said
    assert said(quality, "q1") == [("ann", "a"), ("bob", "a"), ("cy", "b")]
