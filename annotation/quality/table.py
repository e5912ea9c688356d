"""The input of every quality estimator: who gave which verdict on which comparison.

A `JudgmentTable` holds one row per judgment as three integer codes into the tuples of
comparison ids, annotator names and verdict categories. Every estimator reads the codes;
the ids and names only travel through to the results. It is the minimal data the quality
math needs (three small integers per judgment), so a million judgments cost ~12 MB here
whatever the prompts and outputs weigh.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

# Marks a missing rating in wide (comparison x annotator) input and an undecided label in
# aggregates: every verdict code is >= 0.
MISSING = -1


@dataclass(frozen=True, eq=False)
class JudgmentTable:
    comparisons: tuple[Hashable, ...]
    annotators: tuple[Hashable, ...]
    verdicts: tuple[Hashable, ...]
    comparison: np.ndarray  # shape (n_judgments,), codes into `comparisons`
    annotator: np.ndarray  # shape (n_judgments,), codes into `annotators`
    verdict: np.ndarray  # shape (n_judgments,), codes into `verdicts`

    def __post_init__(self):
        n = len(self.comparison)
        if not (len(self.annotator) == len(self.verdict) == n):
            raise ValueError("comparison, annotator and verdict codes must have the same length")
        for name, codes, size in (
            ("comparison", self.comparison, len(self.comparisons)),
            ("annotator", self.annotator, len(self.annotators)),
            ("verdict", self.verdict, len(self.verdicts)),
        ):
            if n and (codes.min() < 0 or codes.max() >= size):
                raise ValueError(f"{name} codes out of range")
        # Each annotator judges a comparison once (a correction supersedes, it does not add):
        # pairwise agreement and Dawid-Skene would count a duplicate as a second, agreeing
        # judge.
        key = self.comparison.astype(np.int64) * max(len(self.annotators), 1) + self.annotator
        if len(np.unique(key)) != n:
            raise ValueError("an annotator judged the same comparison more than once")

    # --- constructors ---------------------------------------------------------------------

    @classmethod
    def from_records(
        cls,
        records: Iterable[tuple[Hashable, Hashable, Hashable]],
        verdicts: Sequence[Hashable] | None = None,
    ) -> JudgmentTable:
        """From (comparison, annotator, verdict) triples. `verdicts` fixes the categories
        and their order; by default the observed ones, sorted."""
        import pandas as pd

        frame = pd.DataFrame(list(records), columns=["comparison", "annotator", "verdict"])
        return cls.from_pandas(frame, verdicts=verdicts)

    @classmethod
    def from_pandas(
        cls,
        frame,  # pandas.DataFrame
        comparison: str = "comparison",
        annotator: str = "annotator",
        verdict: str = "verdict",
        verdicts: Sequence[Hashable] | None = None,
    ) -> JudgmentTable:
        import pandas as pd

        frame = frame.dropna(subset=[verdict])
        comparison_codes, comparison_ids = pd.factorize(frame[comparison], sort=False)
        annotator_codes, annotator_ids = pd.factorize(frame[annotator], sort=False)
        if verdicts is None:
            verdicts = sorted(frame[verdict].unique().tolist())
        verdict_index = pd.Index(list(verdicts))
        verdict_codes = verdict_index.get_indexer(frame[verdict])
        if (verdict_codes < 0).any():
            unknown = sorted(set(frame[verdict][verdict_codes < 0].tolist()))
            raise ValueError(f"verdicts {unknown} are not among {list(verdicts)}")
        return cls(
            comparisons=tuple(comparison_ids.tolist()),
            annotators=tuple(annotator_ids.tolist()),
            verdicts=tuple(verdicts),
            comparison=comparison_codes.astype(np.int64),
            annotator=annotator_codes.astype(np.int64),
            verdict=verdict_codes.astype(np.int64),
        )

    @classmethod
    def from_wide(
        cls,
        matrix: np.ndarray,
        annotators: Sequence[Hashable],
        verdicts: Sequence[Hashable],
        comparisons: Sequence[Hashable] | None = None,
    ) -> JudgmentTable:
        """From a (n_comparisons, n_annotators) matrix of verdict codes, MISSING where an
        annotator did not judge: the layout of most published agreement data sets."""
        matrix = np.asarray(matrix)
        rows, cols = np.nonzero(matrix != MISSING)
        return cls(
            comparisons=tuple(comparisons) if comparisons is not None else tuple(range(matrix.shape[0])),
            annotators=tuple(annotators),
            verdicts=tuple(verdicts),
            comparison=rows.astype(np.int64),
            annotator=cols.astype(np.int64),
            verdict=matrix[rows, cols].astype(np.int64),
        )

    # --- shapes and views -----------------------------------------------------------------

    @property
    def n_judgments(self) -> int:
        return len(self.comparison)

    @property
    def n_comparisons(self) -> int:
        return len(self.comparisons)

    @property
    def n_annotators(self) -> int:
        return len(self.annotators)

    @property
    def n_verdicts(self) -> int:
        return len(self.verdicts)

    def counts(self) -> np.ndarray:
        """Verdict counts per comparison, shape (n_comparisons, n_verdicts): the input of
        Fleiss' kappa, nominal Krippendorff's alpha and majority vote."""
        flat = np.bincount(
            self.comparison * self.n_verdicts + self.verdict, minlength=self.n_comparisons * self.n_verdicts
        )
        return flat.reshape(self.n_comparisons, self.n_verdicts)

    def judgments_per_annotator(self) -> np.ndarray:
        return np.bincount(self.annotator, minlength=self.n_annotators)

    def wide(self) -> np.ndarray:
        """Shape (n_comparisons, n_annotators) of verdict codes, MISSING where absent. Dense:
        for small tables and tests."""
        matrix = np.full((self.n_comparisons, self.n_annotators), MISSING, dtype=np.int64)
        matrix[self.comparison, self.annotator] = self.verdict
        return matrix

    def joint_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Joint verdict counts of every pair of annotators on the comparisons both judged.

        Returns `pairs`, shape (n_pairs, 2), each (a, b) with a < b and at least one
        comparison in common, and `tables`, shape (n_pairs, n_verdicts, n_verdicts), where
        tables[p, k, l] counts the comparisons on which a said k and b said l.

        One sparse product of the (comparison x annotator-verdict) indicator matrix with
        itself: its cost is the sum over comparisons of the squared number of judgments,
        never n_annotators^2 x n_comparisons, and only pairs that met are stored.
        """
        from scipy.sparse import csr_matrix

        k = self.n_verdicts
        width = self.n_annotators * k
        indicator = csr_matrix(
            (np.ones(self.n_judgments), (self.comparison, self.annotator * k + self.verdict)),
            shape=(self.n_comparisons, width),
        )
        joint = (indicator.T @ indicator).tocoo()
        a, verdict_a = np.divmod(joint.row, k)
        b, verdict_b = np.divmod(joint.col, k)
        upper = a < b
        a, b, verdict_a, verdict_b, count = a[upper], b[upper], verdict_a[upper], verdict_b[upper], joint.data[upper]
        pair_keys, pair_index = np.unique(a * self.n_annotators + b, return_inverse=True)
        tables = np.zeros((len(pair_keys), k, k))
        np.add.at(tables, (pair_index, verdict_a, verdict_b), count)
        pairs = np.column_stack(np.divmod(pair_keys, self.n_annotators)).astype(np.int64).reshape(-1, 2)
        return pairs, tables

    def select(self, mask: np.ndarray) -> JudgmentTable:
        """The judgments where `mask` (shape (n_judgments,)) is true, codes unchanged."""
        return JudgmentTable(
            comparisons=self.comparisons,
            annotators=self.annotators,
            verdicts=self.verdicts,
            comparison=self.comparison[mask],
            annotator=self.annotator[mask],
            verdict=self.verdict[mask],
        )

    def verdict_code(self, verdict: Hashable) -> int | None:
        try:
            return self.verdicts.index(verdict)
        except ValueError:
            return None
