"""Benchmark: agreement and Dawid-Skene reliability on PandaLM's human-annotated test set.

Reads the 999 comparisons of pandalm-testset-v1.json (three annotators each, 0 = tie,
1 = response1 better, 2 = response2 better) straight from the file, no database, and
prints Krippendorff's alpha, Fleiss' kappa, pairwise Cohen's kappas and each annotator's
Dawid-Skene reliability from `annotation.quality`, with the time each took; then the same
figures from the reference libraries (krippendorff, statsmodels, scikit-learn, crowd-kit)
as a cross-check. Prints figures; not a test.

    .venv/bin/python bench/agreement.py [--data /work/shared/data/pandalm-testset-v1.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from annotation.quality import (  # noqa: E402
    DawidSkene,
    JudgmentTable,
    annotator_reliability,
    fleiss_kappa,
    krippendorff_alpha,
    majority_vote,
    pairwise_cohen_kappa,
)

DEFAULT_DATA = "/work/shared/data/pandalm-testset-v1.json"
ANNOTATORS = ("annotator1", "annotator2", "annotator3")
VERDICTS = ("a", "b", "tie")
# PandaLM's codes to ours: response1 is side A, response2 side B.
PANDALM_CODE = {1: 0, 2: 1, 0: 2}


def load(path: str) -> JudgmentTable:
    with open(path, encoding="utf-8") as handle:
        rows = json.load(handle)
    matrix = np.array([[PANDALM_CODE[row[name]] for name in ANNOTATORS] for row in rows])
    ids = [row["idx"] for row in rows]
    return JudgmentTable.from_wide(matrix, annotators=ANNOTATORS, verdicts=VERDICTS, comparisons=ids)


def timed(function, *args, repeat: int = 5, **kwargs):
    """(result, best wall time in ms over `repeat` runs)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        result = function(*args, **kwargs)
        best = min(best, time.perf_counter() - started)
    return result, best * 1000


def all_figures(table: JudgmentTable):
    counts = table.counts()
    fitted = DawidSkene().fit(table)
    return (krippendorff_alpha(counts), fleiss_kappa(counts), pairwise_cohen_kappa(table),
            annotator_reliability(fitted), majority_vote(table))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA)
    args = parser.parse_args(argv)

    table, load_ms = timed(load, args.data, repeat=1)
    # One cold pass over everything (first use pays the lazy scipy import), then each
    # figure timed again as the best of five warm runs.
    _, cold_ms = timed(all_figures, table, repeat=1)
    counts = table.counts()
    print(f"PandaLM test set: {table.n_comparisons} comparisons x {table.n_annotators} annotators "
          f"= {table.n_judgments} judgments (loaded in {load_ms:.0f} ms)")
    shares = np.bincount(table.verdict, minlength=len(VERDICTS)) / table.n_judgments
    print("verdict shares: " + ", ".join(f"{v} {s:.3f}" for v, s in zip(VERDICTS, shares)))
    unanimous = np.mean(counts.max(axis=1) == table.n_annotators)
    print(f"unanimous comparisons: {unanimous:.3f}\n")

    alpha, alpha_ms = timed(krippendorff_alpha, counts)
    fleiss, fleiss_ms = timed(fleiss_kappa, counts)
    pairs, pairs_ms = timed(pairwise_cohen_kappa, table)
    fitted, ds_ms = timed(DawidSkene().fit, table)
    reliability = annotator_reliability(fitted)
    print(f"Krippendorff's alpha (nominal)  {alpha:.4f}   ({alpha_ms:.2f} ms)")
    print(f"Fleiss' kappa                   {fleiss:.4f}   ({fleiss_ms:.2f} ms)")
    print(f"pairwise Cohen's kappa                   ({pairs_ms:.2f} ms)")
    for pair in pairs:
        print(f"  {pair.a} / {pair.b}   kappa {pair.kappa:.4f}   agreement {pair.agreement:.3f}   n {pair.n}")
    print(f"Dawid-Skene: {fitted.n_iter} EM iterations, converged {fitted.converged}  ({ds_ms:.1f} ms)")
    print("  prior: " + ", ".join(f"{v} {p:.3f}" for v, p in zip(VERDICTS, fitted.prior)))
    for row in reliability:
        print(f"  {row.annotator}   reliability {row.reliability:.4f}   skill {row.skill:.3f}   "
              f"informativeness {row.informativeness:.3f}   flags {list(row.flags) or '-'}")
    majority = majority_vote(table)
    aggregate = fitted.aggregate()
    both = majority.decided
    print(f"majority vote decides {majority.n_decided} of {table.n_comparisons}; Dawid-Skene agrees with it on "
          f"{np.mean(aggregate.label[both] == majority.label[both]):.3f} of those")
    print(f"all figures in one cold pass: {cold_ms:.0f} ms (+ {load_ms:.0f} ms reading the file)\n")

    print("cross-check with the reference libraries:")
    import krippendorff
    from sklearn.metrics import cohen_kappa_score
    from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss

    wide = table.wide()
    reference_alpha, ms = timed(krippendorff.alpha, reliability_data=wide.T, level_of_measurement="nominal")
    print(f"  krippendorff.alpha          {reference_alpha:.4f}   ({ms:.2f} ms)")
    reference_fleiss, ms = timed(statsmodels_fleiss, counts)
    print(f"  statsmodels fleiss_kappa    {reference_fleiss:.4f}   ({ms:.2f} ms)")
    for pair in pairs:
        i, j = ANNOTATORS.index(pair.a), ANNOTATORS.index(pair.b)
        print(f"  sklearn cohen_kappa_score   {pair.a} / {pair.b}   {cohen_kappa_score(wide[:, i], wide[:, j]):.4f}")
    try:
        import pandas as pd
        from crowdkit.aggregation import DawidSkene as CrowdKitDawidSkene
    except ImportError:
        return
    frame = pd.DataFrame({"task": table.comparison, "worker": table.annotator, "label": table.verdict})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # crowd-kit's pandas deprecation warnings
        reference, ms = timed(CrowdKitDawidSkene(n_iter=fitted.n_iter, tol=-1.0).fit, frame, repeat=1)
    errors = reference.errors_
    prior = reference.priors_.reindex(range(len(VERDICTS))).to_numpy()
    for a, name in enumerate(ANNOTATORS):
        confusion = errors.loc[a].reindex(index=range(3), columns=range(3)).fillna(0.0).to_numpy().T
        print(f"  crowd-kit DawidSkene        {name} reliability {float(prior @ np.diag(confusion)):.4f}")
    print(f"  crowd-kit DawidSkene, same {fitted.n_iter} iterations: {ms:.0f} ms")


if __name__ == "__main__":
    main()
