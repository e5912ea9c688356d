"""A run's progress and results as researchers read them: the phase it is in, each
evaluation with its sample size and uncertainty, the other figures formatted by type, and
the loss curve as SVG points. Used by the pages, the JSON status and the `train` command.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Under this many held-out pairs an accuracy's 95% interval is wider than ±0.15 at best and
# approaches ±0.5 for a handful of pairs: the figure is shown with a warning.
MIN_EVALUATION_PAIRS = 30

PHASES = {
    "dataset": "building the dataset",
    "loading": "loading the model",
    "reference": "computing reference log-probabilities",
    "training": "training",
    "evaluation": "evaluating on held-out pairs",
    "saving": "saving the model",
    "registering": "registering the tuned system",
}

# Accuracies on the held-out split, in the order shown; each is a share of `n_pairs` pairs.
EVALUATIONS = {
    "preference_accuracy": "Preference accuracy (tuned)",
    "base_preference_accuracy": "Preference accuracy (untrained head)",
    "ranking_accuracy": "Ranking accuracy (tuned)",
    "base_ranking_accuracy": "Ranking accuracy (base)",
    "ranking_accuracy_normalised": "Ranking accuracy per token (tuned)",
    "base_ranking_accuracy_normalised": "Ranking accuracy per token (base)",
}
# Stored twice by the worker (`heldout_accuracy` is `preference_accuracy`) or shown above.
NOT_REPEATED = {"heldout_accuracy", "n_pairs", *EVALUATIONS}


def wilson_interval(share: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion: unlike the normal approximation it is not
    ±0 when every one of a few pairs is right."""
    if n <= 0:
        return 0.0, 1.0
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Evaluation:
    key: str
    label: str
    value: float
    n: int
    low: float
    high: float

    @property
    def margin(self) -> float:
        return (self.high - self.low) / 2

    @property
    def few_pairs(self) -> bool:
        return self.n < MIN_EVALUATION_PAIRS

    @property
    def warning(self) -> str:
        return f"few pairs: ±{self.margin:.2f}" if self.few_pairs else ""

    def short(self) -> str:
        """One line: `0.750 (n = 4, few pairs: ±0.33)`."""
        note = f", {self.warning}" if self.warning else f", ±{self.margin:.2f}"
        return f"{self.value:.3f} (n = {self.n}{note})"


def evaluations(metrics: dict) -> list[Evaluation]:
    n = metrics.get("n_pairs", metrics.get("n_validation"))
    if not isinstance(n, (int, float)):
        return []
    n = int(n)
    found = []
    for key, label in EVALUATIONS.items():
        value = metrics.get(key)
        if key == "preference_accuracy" and value is None:
            value = metrics.get("heldout_accuracy")
        if isinstance(value, (int, float)) and math.isfinite(value):
            low, high = wilson_interval(float(value), n)
            found.append(Evaluation(key, label, float(value), n, low, high))
    return found


def heldout(metrics: dict) -> Evaluation | None:
    """The headline figure: held-out preference accuracy."""
    return next((e for e in evaluations(metrics) if e.key == "preference_accuracy"), None)


def format_value(value) -> str:
    """Counts as integers, measurements to four significant digits."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}".replace(",", " ")
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


def other_metrics(metrics: dict) -> list[tuple[str, str]]:
    return [
        (key, format_value(value)) for key, value in sorted(metrics.items())
        if key not in NOT_REPEATED and (value is None or isinstance(value, (int, float, str)))
    ]  # fmt: skip


# --- progress -------------------------------------------------------------------------------


def _whole(value) -> int | None:
    return int(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def phase_label(progress: dict) -> str:
    phase = progress.get("phase")
    return PHASES.get(phase, str(phase)) if phase else ""


def describe_progress(progress: dict) -> str:
    """`training · step 3 of 10 · loss 0.6931 · 812 MB`, from whichever keys are present."""
    parts = []
    phase = progress.get("phase")
    if phase:
        part = phase_label(progress)
        done, total = _whole(progress.get("phase_done")), _whole(progress.get("phase_total"))
        if phase != "training" and done is not None and total:
            part += f" {done} of {total}"
        parts.append(part)
    step, total_steps = _whole(progress.get("step")), _whole(progress.get("total_steps"))
    if step is not None and (step or total_steps) and (not phase or phase == "training" or step):
        parts.append(f"step {step} of {total_steps if total_steps else '?'}")
    loss = progress.get("loss")
    if isinstance(loss, (int, float)) and math.isfinite(loss):
        parts.append(f"loss {loss:.4f}")
    accuracy = progress.get("reward_accuracy")
    if isinstance(accuracy, (int, float)) and math.isfinite(accuracy):
        parts.append(f"batch accuracy {accuracy:.2f}")
    rss = _whole(progress.get("rss_mb"))
    if rss:
        parts.append(f"{rss} MB")
    return " · ".join(parts)


def progress_line(status: str, progress: dict) -> str:
    """What a run is doing, or where it stopped: `describe_progress` while it runs."""
    if status == "succeeded":
        return "done"
    if status in ("failed", "cancelled"):
        phase = phase_label(progress)
        return f"{status} while {phase}" if phase else status
    return describe_progress(progress) or {"queued": "waiting for a worker", "running": "starting"}.get(status, "")


def percent(status: str, progress: dict) -> int:
    """Of the training steps; 100 once the run succeeded."""
    if status == "succeeded":
        return 100
    step, total = _whole(progress.get("step")), _whole(progress.get("total_steps"))
    return min(100, int(100 * step / total)) if step is not None and total else 0


def error_summary(error: str) -> str:
    """The line that says what went wrong: the last line of a traceback, or the message."""
    lines = [line.strip() for line in (error or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


# --- curves ---------------------------------------------------------------------------------


def curve(history: list[dict], key: str, width: int = 560, height: int = 160) -> dict | None:
    """An SVG polyline of one metric over steps, computed here so no plotting library ships."""
    points = [
        (h["step"], h[key]) for h in history
        if isinstance(h, dict) and isinstance(h.get("step"), (int, float))
        and isinstance(h.get(key), (int, float)) and math.isfinite(h[key])
    ]  # fmt: skip
    if len(points) < 2:
        return None
    steps, values = zip(*points)
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    first, last = min(steps), max(steps)

    def xy(step, value):
        x = 40 + (step - first) / ((last - first) or 1) * (width - 50)
        y = 10 + (1 - (value - low) / span) * (height - 30)
        return f"{x:.1f},{y:.1f}"

    return {"points": " ".join(xy(s, v) for s, v in points), "low": f"{low:.4g}", "high": f"{high:.4g}",
            "first": int(first), "last": int(last), "width": width, "height": height}  # fmt: skip
