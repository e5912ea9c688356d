"""Build `fastchat-pandalm-battles.json`, a FastChat `clean_battle` log from PandaLM's human votes.

Each of the 999 PandaLM test items was judged by three people; each judgment becomes one
battle between the two systems named in `cmp_key` (`bloom-7b_llama-7b` -> model_a
`bloom-7b`, model_b `llama-7b`): 1 -> `model_a`, 2 -> `model_b`, 0 -> `tie`. Timestamps
are spread one minute apart from 2023-04-01, the columns FastChat's log carries are filled
in, and then the degenerate rows real logs contain are mixed in at fixed places (seeded):

- 17 rows where model_a and model_b are the same system,
- 3 rows whose `winner` is null and 2 whose winner is not a FastChat outcome,
- 2 rows with no `model_b`,
- 1 row whose `tstamp` is not a time.

So the file has 2,997 good battles and 25 degenerate rows (3,022 in all).
Run from anywhere: `python tests/data/real/build_fastchat_log.py`.
"""

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
WINNER = {0: "tie", 1: "model_a", 2: "model_b"}
START = 1680307200  # 2023-04-01T00:00:00Z


def build() -> list[dict]:
    items = json.loads((HERE / "pandalm-testset-v1.json").read_text())
    battles = []
    for item in items:
        model_a, model_b = item["cmp_key"].split("_")
        for k in (1, 2, 3):
            n = len(battles)
            battles.append({
                "question_id": f"pandalm-{item['idx']}",
                "model_a": model_a,
                "model_b": model_b,
                "winner": WINNER[item[f"annotator{k}"]],
                "judge": f"pandalm-annotator{k}",
                "turn": 1,
                "anony": True,
                "language": "English",
                "tstamp": START + 60 * n,
                "conv_metadata": {
                    "sum_assistant_a_tokens": len(str(item["response1"]).split()),
                    "sum_assistant_b_tokens": len(str(item["response2"]).split()),
                    "sum_user_tokens": len(str(item["instruction"]).split()),
                    "turns": 1,
                },
            })
    rng = random.Random(13)
    systems = sorted({b["model_a"] for b in battles} | {b["model_b"] for b in battles})
    degenerate = []
    for _ in range(17):
        name = rng.choice(systems)
        degenerate.append({"model_a": name, "model_b": name, "winner": rng.choice(["model_a", "model_b", "tie"])})
    degenerate += [{"model_a": "llama-7b", "model_b": "opt-7b", "winner": None} for _ in range(3)]
    degenerate += [{"model_a": "bloom-7b", "model_b": "opt-7b", "winner": w} for w in ("model_c", "bothbad")]
    degenerate += [{"model_a": "pythia-6.9b", "winner": "model_a"} for _ in range(2)]
    degenerate += [{"model_a": "bloom-7b", "model_b": "llama-7b", "winner": "model_b", "tstamp": "yesterday"}]
    for row in degenerate:
        row.setdefault("tstamp", START)
        row.update({"judge": "degenerate", "turn": 1, "anony": True, "language": "English"})
        battles.insert(rng.randrange(len(battles) + 1), row)
    return battles


if __name__ == "__main__":
    out = HERE / "fastchat-pandalm-battles.json"
    out.write_text(json.dumps(build(), indent=1) + "\n")
    print(f"wrote {out}")
