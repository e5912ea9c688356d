"""The local judges on a tiny random Llama (mechanics) and, marked slow, on the real SmolLM2."""

import json
from pathlib import Path

import pytest

from routing.judges import UNPARSABLE, UNSUPPORTED, PairItem, get_judge
from routing.judges.local import GenerateJudge, LogitJudge, verdict_token_ids
from routing.judges.protocol import VERDICT_PREFIX

DATA = Path(__file__).parent / "data"


def _pandalm_items(n):
    rows = json.loads((DATA / "pandalm-testset-sample.json").read_text())[:n]
    return [PairItem(str(r["idx"]), r["instruction"] + ("\n\n" + r["input"] if r["input"] else ""),
                     str(r["response1"]), str(r["response2"])) for r in rows]


def _swap(item):
    return PairItem(item.id + "-swapped", item.prompt, item.b, item.a)


def test_verdict_letters_are_single_tokens_after_the_prefix(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))  # SmolLM2's own tokenizer
    ids = verdict_token_ids(tokenizer)
    assert [tokenizer.decode([i]) for i in ids] == ["A", "B", "C"]


def test_probabilities_sum_to_one_in_every_order(tiny_model_dir):
    verdicts = LogitJudge(str(tiny_model_dir), batch_size=2).judge(_pandalm_items(3))
    for verdict in verdicts:
        assert verdict.p_a + verdict.p_b + verdict.p_tie == pytest.approx(1.0, abs=1e-6)
        assert verdict.verdict in ("a", "b", "tie") and verdict.confidence == max(verdict.p_a, verdict.p_b, verdict.p_tie)
        assert [order.order for order in verdict.orders] == ["ab", "ba"]
        for order in verdict.orders:
            assert order.p_a + order.p_b + order.p_tie == pytest.approx(1.0, abs=1e-6)
            assert order.source == "logits" and 0 < order.verdict_mass <= 1


def test_swapping_the_answers_swaps_the_probabilities(tiny_model_dir):
    # given: an item and the same item with a and b exchanged
    item = _pandalm_items(1)[0]
    judge = LogitJudge(str(tiny_model_dir))
    # when
    original, swapped = judge.judge([item, _swap(item)])
    # then: the "ab" prompt of one is the "ba" prompt of the other, mapped back to its own a/b
    assert original.orders[0].p_a == pytest.approx(swapped.orders[1].p_b, abs=1e-5)
    assert original.p_a == pytest.approx(swapped.p_b, abs=1e-5)
    assert original.p_tie == pytest.approx(swapped.p_tie, abs=1e-5)
    # not vacuous: the two orders of one item do give different numbers
    assert abs(original.orders[0].p_a - original.orders[1].p_a) > 1e-4


@pytest.mark.parametrize("share_prefix", [True, False])
@pytest.mark.parametrize("share_question", [True, False])
def test_batched_scoring_equals_one_pair_at_a_time(tiny_model_dir, share_prefix, share_question):
    items = _pandalm_items(5)
    # float32: exact mechanics; bfloat16 rounding differs with the batch's shapes
    batched = LogitJudge(str(tiny_model_dir), batch_size=4, share_prefix=share_prefix, share_question=share_question,
                         precision="float32").judge(items)
    alone = [LogitJudge(str(tiny_model_dir), batch_size=1, share_prefix=False, share_question=False,
                        precision="float32").judge([item])[0] for item in items]
    for together, single in zip(batched, alone):
        assert (together.p_a, together.p_b, together.p_tie) == pytest.approx((single.p_a, single.p_b, single.p_tie),
                                                                             abs=1e-5)


def _printed_letter_probs(order):
    """P(A), P(B), P(C) as printed in that order (an OrderResult holds them mapped to a/b)."""
    first, second = (order.p_a, order.p_b) if order.order == "ab" else (order.p_b, order.p_a)
    return [first, second, order.p_tie]


def _full_prompt_letter_log_probs(model, tokenizer, judge, item):
    """The letter log-probs of each order from its whole prompt, alone, no cache: the reference."""
    import torch

    letter_ids = verdict_token_ids(tokenizer)
    rows = []
    for order in ("ab", "ba"):
        text = judge._prompt_text(tokenizer, item, order) + VERDICT_PREFIX
        ids = torch.tensor([tokenizer.encode(text, add_special_tokens=False)])
        with torch.inference_mode():
            logits = model(input_ids=ids).logits[0, -1]
        rows.append(torch.log_softmax(logits.float(), dim=-1)[letter_ids].tolist())
    return rows


def test_shared_prefix_and_question_caches_give_the_full_prompts_letter_log_probs(tiny_model_dir):
    import math

    from arena.providers.localmodel import load_causal_lm

    model, tokenizer = load_causal_lm(str(tiny_model_dir))
    # Questions and answers of different lengths, so rows pad inside the batch.
    items = _pandalm_items(5) + [PairItem("short", "Hi?", "Hello.", "A much longer greeting than the other one.")]
    judge = LogitJudge(str(tiny_model_dir), batch_size=6, precision="float32")
    verdicts = judge.judge(items)
    for item, verdict in zip(items, verdicts):
        reference = _full_prompt_letter_log_probs(model, tokenizer, judge, item)
        for order, expected in zip(verdict.orders, reference):
            got = [math.log(order.verdict_mass * p) for p in _printed_letter_probs(order)]
            assert got == pytest.approx(expected, abs=1e-4)


def test_bfloat16_scoring_stays_close_to_float32(tiny_model_dir):
    items = _pandalm_items(4)
    exact = LogitJudge(str(tiny_model_dir), batch_size=4, precision="float32").judge(items)
    fast = LogitJudge(str(tiny_model_dir), batch_size=4, precision="bfloat16").judge(items)
    for x, y in zip(exact, fast):
        assert (y.p_a, y.p_b, y.p_tie) == pytest.approx((x.p_a, x.p_b, x.p_tie), abs=5e-3)
        assert y.p_a + y.p_b + y.p_tie == pytest.approx(1.0, abs=1e-6)


def test_cut_middle_keeps_the_start_and_the_end(tiny_model_dir):
    from transformers import AutoTokenizer

    from routing.judges.local import cut_middle

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    text = "BEGIN " + " ".join(f"w{n}" for n in range(500)) + " FINAL ANSWER 42"
    cut = cut_middle(tokenizer, text, 60)
    assert cut.startswith("BEGIN") and cut.endswith("FINAL ANSWER 42") and " [...] " in cut
    assert len(tokenizer.encode(cut, add_special_tokens=False)) <= 60 + 8
    assert cut_middle(tokenizer, "short answer", 60) == "short answer"


def test_long_answers_are_cut_not_refused(tiny_model_dir):
    item = PairItem("long", "Summarise.", "word " * 3000, "short")
    judge = LogitJudge(str(tiny_model_dir), max_answer_tokens=64)
    verdict = judge.judge([item])[0]
    assert verdict.verdict in ("a", "b", "tie")
    assert "-a64q256" in judge.version  # the budget is part of what the judge is


def test_an_image_comparison_is_never_shown_to_a_text_judge(tiny_model_dir):
    judge = get_judge(f"model:{tiny_model_dir}")
    text, image = judge.judge([_pandalm_items(1)[0], PairItem("img", "Which is a cat?", "", "", modality="image")])
    assert text.verdict in ("a", "b", "tie")
    assert image.verdict == UNSUPPORTED and not image.usable and "cannot judge image" in image.detail
    assert judge.supports("text") and not judge.supports("audio")


def test_generate_judge_records_unparsable_text_as_unparsable(tiny_model_dir):
    # A random model writes noise (here: only special tokens), never one [[A]]/[[B]]/[[C]].
    verdict = GenerateJudge(str(tiny_model_dir), max_new_tokens=6).judge(_pandalm_items(1))[0]
    assert verdict.verdict == UNPARSABLE
    assert verdict.p_a is None and verdict.confidence is None and verdict.order_consistent is False
    assert [order.verdict for order in verdict.orders] == [UNPARSABLE, UNPARSABLE]
    assert "no verdict in every order" in verdict.detail


@pytest.mark.slow
def test_smollm2_judges_real_pairs_in_one_forward_pass(smollm2_dir):
    # SmolLM2-135M is a near-chance judge: this checks the mechanics on the real weights,
    # not its verdicts.
    items = _pandalm_items(2)
    judge = LogitJudge(str(smollm2_dir), batch_size=2, precision="float32")
    batched = judge.judge(items)
    alone = [judge.judge([item])[0] for item in items]
    fast = LogitJudge(str(smollm2_dir), batch_size=2, precision="bfloat16").judge(items)
    for together, single, rounded in zip(batched, alone, fast):
        assert together.p_a + together.p_b + together.p_tie == pytest.approx(1.0, abs=1e-6)
        assert together.p_a == pytest.approx(single.p_a, abs=1e-4)
        # bfloat16 rounding moves the real model's probabilities by about a hundredth
        assert rounded.p_a == pytest.approx(single.p_a, abs=0.03)
        # After "[[" the real model does put much of its next-token mass on a verdict letter.
        assert all(order.verdict_mass > 0.1 for order in together.orders)


def _stock_autocast(monkeypatch):
    """The logit judge as it ran before its bfloat16 copy: autocast over the float32 model."""
    import routing.judges.local as local

    monkeypatch.setattr(local, "_judging_model", lambda model, autocast, **_: model)


def test_the_bfloat16_copy_gives_autocasts_probabilities_without_changing_the_arenas_model(tiny_model_dir,
                                                                                          monkeypatch):
    import torch

    from arena.providers.localmodel import load_causal_lm
    from routing.judges.local import _JudgingModel, _judging_model, _autocast

    # given: padded rows (two pairs of different lengths in one batch) and a shared prefix
    items = _pandalm_items(4) + [PairItem("short", "Hi?", "Hello.", "A much longer greeting than the other one.")]
    model, _ = load_causal_lm(str(tiny_model_dir))
    # when
    fast = LogitJudge(str(tiny_model_dir), batch_size=3, precision="bfloat16").judge(items)
    copy = _judging_model(model, _autocast(model, "bfloat16"))
    _stock_autocast(monkeypatch)
    stock = LogitJudge(str(tiny_model_dir), batch_size=3, precision="bfloat16").judge(items)
    # then: the same numbers, from bfloat16 linear weights in a copy made once
    for x, y in zip(stock, fast):
        for a, b in zip(x.orders, y.orders):
            assert (b.p_a, b.p_b, b.p_tie) == pytest.approx((a.p_a, a.p_b, a.p_tie), abs=2e-3)
    assert isinstance(copy, _JudgingModel)
    assert copy.get_decoder().layers[0].mlp.down_proj.weight.dtype == torch.bfloat16
    assert copy.get_decoder().embed_tokens is model.get_decoder().embed_tokens
    assert model.get_decoder().layers[0].mlp.down_proj.weight.dtype == torch.float32
    assert model.config._attn_implementation != copy.get_decoder().config._attn_implementation


@pytest.mark.slow
@pytest.mark.timeout(1800)  # 60 long pairs, one in float32: ~2 min idle, 10+ on a busy box
def test_smollm2_bfloat16_copy_stays_within_002_of_autocast_on_long_pairs(smollm2_dir, monkeypatch):
    # 20 of PandaLM's longest pairs: the judging copy against the same judge before it
    # (autocast over float32 weights), and against plain float32.
    from arena.providers.localmodel import load_causal_lm
    from bench.judging import longest_third
    from routing.judges.files import read_labelled_pairs

    _, tokenizer = load_causal_lm(str(smollm2_dir))
    pairs = longest_third(read_labelled_pairs(Path(__file__).parent.parent / "data" / "real"
                                              / "pandalm-testset-v1.json"), tokenizer)
    items = [pair.item for pair in pairs[:: len(pairs) // 20][:20]]
    fast = LogitJudge(str(smollm2_dir), precision="bfloat16").judge(items)
    exact = LogitJudge(str(smollm2_dir), precision="float32").judge(items)
    _stock_autocast(monkeypatch)
    stock = LogitJudge(str(smollm2_dir), precision="bfloat16").judge(items)

    def gap(xs, ys):
        return max(abs(getattr(x, f) - getattr(y, f)) for x, y in zip(xs, ys) for f in ("p_a", "p_b", "p_tie"))

    # 0.02 before the copy's attention went in query blocks: the blocks' bfloat16 rounding
    # (same attention in float32, tested above) moved it to 0.027 on these 20 pairs.
    assert gap(fast, stock) <= 0.03
    assert gap(fast, exact) <= gap(stock, exact) + 0.02


def test_int8_linear_multiplies_exactly_where_quantisation_loses_nothing():
    import torch

    from routing.judges.int8 import Int8Linear

    # given: weight rows whose largest entry is 127 steps of their scale (0.01 and 0.02)
    linear = torch.nn.Linear(2, 2, bias=False)
    linear.weight.data = torch.tensor([[1.27, -0.5], [0.0, 2.54]])  # steps: [127, -50], [0, 127]
    layer = Int8Linear(linear, torch.float32)
    # inputs whose rows are whole steps of max|row| / 127 (1 and 2)
    x = torch.tensor([[127.0, -127.0], [254.0, 126.0]])  # steps: [127, -127], [127, 63]
    # when
    out = layer(x)
    # then: 127*1.27 + 127*0.5 = 224.79; -127*2.54 = -322.58; 254*1.27 - 126*0.5 = 259.58; 126*2.54 = 320.04
    assert layer.weight_t.dtype == torch.int8 and layer.weight_t.T.tolist() == [[127, -50], [0, 127]]
    assert out.flatten().tolist() == pytest.approx([224.79, -322.58, 259.58, 320.04], abs=1e-3)


def test_int8_linear_stays_close_to_float32_on_rows_of_very_different_sizes():
    import torch

    from routing.judges.int8 import Int8Linear

    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 32, bias=True)
    # rows 1000x apart: one scale per tensor would flush the small row to a few steps
    x = torch.randn(3, 5, 64) * torch.tensor([1e-3, 1.0, 1e3])[:, None, None]
    exact = linear(x)
    got = Int8Linear(linear, torch.float32)(x)
    assert got.shape == exact.shape
    for row in range(3):
        error = (got[row] - exact[row]).norm() / exact[row].norm()
        assert error < 0.02


def test_int8_scoring_stays_close_to_float32(tiny_model_dir):
    import torch

    from arena.providers.localmodel import load_causal_lm
    from routing.judges.int8 import Int8Linear
    from routing.judges.local import _autocast, _judging_model

    items = _pandalm_items(4) + [PairItem("short", "Hi?", "Hello.", "A much longer greeting than the other one.")]
    exact = LogitJudge(str(tiny_model_dir), batch_size=3, precision="fp32").judge(items)
    fast = LogitJudge(str(tiny_model_dir), batch_size=3, precision="int8").judge(items)
    for x, y in zip(exact, fast):
        for a, b in zip(x.orders, y.orders):
            assert (b.p_a, b.p_b, b.p_tie) == pytest.approx((a.p_a, a.p_b, a.p_tie), abs=1e-2)
        assert y.p_a + y.p_b + y.p_tie == pytest.approx(1.0, abs=1e-6)
    # every linear of the judging copy is int8; the arena's model is untouched
    model, _ = load_causal_lm(str(tiny_model_dir))
    copy = _judging_model(model, _autocast(model, "int8"), int8=True)
    kinds = {type(module).__name__ for name, module in copy.get_decoder().named_modules() if name.endswith("_proj")}
    assert kinds == {"Int8Linear"} and isinstance(copy.get_decoder().layers[0].mlp.down_proj, Int8Linear)
    assert model.get_decoder().layers[0].mlp.down_proj.weight.dtype == torch.float32


def test_judge_precision_setting_is_honoured(tiny_model_dir, settings):
    from routing.judges import JudgeError

    # given: the default setting
    assert LogitJudge(str(tiny_model_dir)).precision == "int8"
    assert get_judge(f"model:{tiny_model_dir}").version.endswith("-int8")
    # when: DUET_JUDGE_PRECISION says otherwise (both spellings)
    settings.JUDGE_PRECISION = "fp32"
    plain = LogitJudge(str(tiny_model_dir))
    settings.JUDGE_PRECISION = "BF16"
    rounded = get_judge(f"model:{tiny_model_dir}")
    # then
    assert plain.precision == "float32" and not plain.version.endswith("-int8")
    assert rounded.precision == "bfloat16"
    assert LogitJudge(str(tiny_model_dir), precision="int8").precision == "int8"  # an explicit one wins
    # and the setting decides the numbers: fp32 from the setting equals an explicit fp32 judge
    items = _pandalm_items(2)
    settings.JUDGE_PRECISION = "fp32"
    from_setting = LogitJudge(str(tiny_model_dir)).judge(items)
    explicit = LogitJudge(str(tiny_model_dir), precision="float32").judge(items)
    assert [v.p_a for v in from_setting] == [v.p_a for v in explicit]
    settings.JUDGE_PRECISION = "int4"
    with pytest.raises(JudgeError, match="judge precision 'int4'"):
        LogitJudge(str(tiny_model_dir))


def test_attention_in_query_blocks_equals_one_call_after_a_cache_with_padding(monkeypatch):
    import torch

    import routing.judges.local as local

    # given: 2 rows of 50 new queries after 30 cached keys, row 1 with 4 padded keys in the middle
    torch.manual_seed(0)
    query, key, value = torch.randn(2, 6, 50, 8), torch.randn(2, 2, 80, 8), torch.randn(2, 2, 80, 8)
    mask = torch.ones(80, 80, dtype=torch.bool).tril()[30:][None, None].repeat(2, 1, 1, 1)  # shape (2, 1, 50, 80)
    mask[1, :, :, 30:34] = False
    whole, _ = local._sdpa_gqa(None, query, key, value, mask)
    # when: blocks of 16 queries (4 calls, the last of 2), each reading keys up to its last query
    monkeypatch.setattr(local, "ATTENTION_QUERY_BLOCK", 16)
    blocked, _ = local._sdpa_gqa(None, query, key, value, mask)
    causal_only, _ = local._sdpa_gqa(None, query, key, value, None)
    # then
    assert blocked.shape == whole.shape == (2, 50, 6, 8)
    assert torch.allclose(blocked, whole, atol=1e-6)
    reference = torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=mask[:1].expand(2, 1, 50, 80),
                                                                 enable_gqa=True).transpose(1, 2)
    assert torch.allclose(causal_only, reference, atol=1e-6)


def test_smoothing_the_mlp_keeps_its_function_and_evens_down_projs_input(tiny_model_dir):
    import copy

    import torch

    from arena.providers.localmodel import load_causal_lm
    from routing.judges.int8 import smoothed_mlp_weights

    # given: the tiny model with one input channel of layer 0's down_proj made 300x larger
    model, tokenizer = load_causal_lm(str(tiny_model_dir))
    decoder = copy.deepcopy(model.get_decoder())
    mlp = decoder.layers[0].mlp
    with torch.no_grad():
        mlp.up_proj.weight[3] *= 300
    ids = tokenizer.encode("Which answer is better, A or B? " * 8, add_special_tokens=False)
    # when
    weights = smoothed_mlp_weights(decoder, [ids])
    # then: the same MLP output in float32, and channel 3's peak now close to the others'
    x = torch.randn(1, 10, mlp.up_proj.in_features)
    smoothed = copy.deepcopy(mlp)
    smoothed.up_proj.weight.data = weights["layers.0.mlp.up_proj"]
    smoothed.down_proj.weight.data = weights["layers.0.mlp.down_proj"]
    with torch.inference_mode():
        assert torch.allclose(smoothed(x), mlp(x), rtol=1e-4, atol=1e-5)
        inner = mlp.act_fn(mlp.gate_proj(x)) * mlp.up_proj(x)
        evened = mlp.act_fn(smoothed.gate_proj(x)) * smoothed.up_proj(x)
    ratio_before = inner.abs().amax(dim=(0, 1))[3] / inner.abs().amax(dim=(0, 1)).median()
    ratio_after = evened.abs().amax(dim=(0, 1))[3] / evened.abs().amax(dim=(0, 1)).median()
    assert ratio_before > 50 and ratio_after < ratio_before / 5
    assert set(weights) == {f"layers.{i}.mlp.{n}" for i in range(len(decoder.layers)) for n in ("up_proj", "down_proj")}
