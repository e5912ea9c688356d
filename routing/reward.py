"""A trained reward model as a judge: ``reward:RUN_ID`` is the ``reward_model/`` folder of a
finished reward-model TrainingRun.

Both answers are scored by the model, r(a) and r(b); the margin r(a) - r(b) decides (a tie
when it is within ``tie_margin``, 0 by default, so practically never), and under the
Bradley-Terry model the reward model was trained with, P(a preferred) = sigmoid(margin):
so p_a = sigmoid(margin), p_b = 1 - p_a, p_tie = 0, and confidence = sigmoid(|margin|).
A reward model scores each answer on its own, so the order of the two answers cannot
matter: ``order_consistent`` is None ("does not apply"), not True.

torch and transformers are imported on first use, as for the local LLM judges.
"""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

from routing.judges import A, B, TIE, AutomaticJudge, JudgeError, JudgeVerdict, OrderResult, PairItem

_loaded: dict[tuple[str, str], tuple] = {}
_loaded_lock = threading.Lock()


def sigmoid(x: float) -> float:
    # Split by sign so a large |x| neither overflows exp() nor loses the small side.
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def reward_model_dir(run_id: int | str) -> tuple[Path, bool]:
    """(the run's reward_model folder, whether it was trained on chat messages), checked."""
    from training.models import RunKind, RunStatus, TrainingRun

    try:
        run = TrainingRun.objects.get(pk=int(run_id))
    except (TrainingRun.DoesNotExist, ValueError):
        raise JudgeError(f"reward:{run_id}: no training run {run_id!r}") from None
    if run.kind != RunKind.REWARD:
        raise JudgeError(f"reward:{run_id}: run {run.pk} is a {run.kind} run, not a reward model")
    if run.status != RunStatus.SUCCEEDED:
        raise JudgeError(f"reward:{run_id}: run {run.pk} is {run.status}; only a finished run can judge")
    if run.artifacts.get("model"):  # in the storage every host reaches (arena.storage)
        from arena import storage

        try:
            directory = storage.open_folder(run.artifacts["model"])
        except storage.StoredFolderError as error:
            raise JudgeError(f"reward:{run_id}: {error}") from error
        return directory, _trained_on_messages(str(directory / "dataset.jsonl"))
    output_dir = run.artifacts.get("output_dir")  # runs made before the storage: on this host
    directory = Path(output_dir) / "reward_model" if output_dir else None
    if directory is None or not (directory / "config.json").is_file():
        raise JudgeError(f"reward:{run_id}: run {run.pk} has no reward_model folder (artifacts.output_dir)")
    return directory, _trained_on_messages(run.artifacts.get("dataset"))


def _trained_on_messages(dataset_path: str | None) -> bool:
    """Whether the run's dataset snapshot held chat-message prompts (then the chat template
    wraps prompt and answer, as in training); plain text otherwise."""
    if not dataset_path or not Path(dataset_path).is_file():
        return False
    with open(dataset_path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                return not isinstance(json.loads(line).get("prompt"), str)
    return False


class RewardModelJudge(AutomaticJudge):
    kind = "reward_model"

    def __init__(self, directory: str | Path, name: str, version: str, conversational: bool = False,
                 batch_size: int = 8, max_length: int = 1024, tie_margin: float = 0.0, device: str | None = None):
        self.directory = Path(directory)
        self.name = name
        self.version = version
        self.conversational = conversational
        self.batch_size = max(1, int(batch_size))
        self.max_length = int(max_length)
        self.tie_margin = float(tie_margin)
        self.device = device

    @classmethod
    def for_run(cls, run_id: int | str, **options) -> RewardModelJudge:
        directory, conversational = reward_model_dir(run_id)
        return cls(directory, name=f"reward-run{int(run_id)}", version=f"run-{int(run_id)}/bt-margin",
                   conversational=conversational, **options)

    def _load(self):
        import torch
        from transformers import AutoModelForSequenceClassification

        from training.recipes.runtime import load_tokenizer

        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        key = (str(self.directory.resolve()), device)
        with _loaded_lock:
            if key not in _loaded:
                try:
                    tokenizer = load_tokenizer(self.directory)
                    model = AutoModelForSequenceClassification.from_pretrained(
                        str(self.directory), dtype=torch.float32, local_files_only=True
                    ).to(device).eval()
                except (OSError, ValueError) as error:
                    raise JudgeError(f"cannot load reward model {self.directory}: {error}") from error
                if model.config.pad_token_id is None:
                    model.config.pad_token_id = tokenizer.pad_token_id
                _loaded[key] = (model, tokenizer)
            return _loaded[key]

    def margins(self, items: list[PairItem]) -> list[float]:
        """r(a) - r(b) per item, tokenised as training tokenised its pairs."""
        from annotation.export.rows import answer_messages, dialogue_messages
        from training.recipes.evaluation import reward_margins
        from training.recipes.pairs import PreferencePair
        from training.recipes.reward import tokenize_for_reward

        model, tokenizer = self._load()
        if self.conversational:
            pairs = [PreferencePair(dialogue_messages(item.prompt), answer_messages(item.a), answer_messages(item.b))
                     for item in items]
        else:
            pairs = [PreferencePair(item.prompt, item.a, item.b) for item in items]
        rows = tokenize_for_reward(tokenizer, pairs, self.max_length)
        return [float(m) for m in reward_margins(model, rows, tokenizer.pad_token_id, self.batch_size)[0]]

    def _judge_supported(self, items: list[PairItem]) -> list[JudgeVerdict]:
        verdicts = []
        for item, margin in zip(items, self.margins(items), strict=True):
            if margin == 0 or abs(margin) < self.tie_margin:
                verdict = TIE
            else:
                verdict = A if margin > 0 else B
            p_a = sigmoid(margin)
            order = OrderResult(order="ab", verdict=verdict, p_a=p_a, p_b=1 - p_a, p_tie=0.0, source="reward",
                                raw_text=f"r(a) - r(b) = {margin:.4f}")
            verdicts.append(self._verdict(item.id, verdict, p_a=p_a, p_b=1 - p_a, p_tie=0.0,
                                          confidence=sigmoid(abs(margin)), order_consistent=None, orders=(order,),
                                          detail=f"margin {margin:.4f}"))
        return verdicts
