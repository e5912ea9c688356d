import sys

import pytest

from training.recipes import RecipeError, TrainingRecipe
from training.recipes.config import DPO_LOSSES


def test_recipe_round_trips_through_json_shaped_dicts():
    # given a recipe with every group set
    recipe = TrainingRecipe.from_dict({
        "model": {"adapter": "lora", "lora_target_modules": ["q_proj", "v_proj"]},
        "data": {"validation_fraction": 0.2, "max_length": 128},
        "training": {"losses": ["robust", "ipo"], "loss_weights": [1, 0.5], "flip_rate": 0.2},
    })
    # when stored and read back
    again = TrainingRecipe.from_dict(recipe.to_dict())
    # then nothing changed, lists became tuples, and the loss terms pair names with weights
    assert again == recipe
    assert again.model.lora_target_modules == ("q_proj", "v_proj")
    assert again.training.weighted_terms == (("robust", 1.0), ("ipo", 0.5))


@pytest.mark.parametrize("data, message", [
    ({"training": {"losses": ["dpo"]}}, "training.losses"),
    ({"training": {"losses": ["sigmoid", "ipo"], "loss_weights": [1.0]}}, "loss_weights"),
    ({"training": {"flip_rate": 0.5}}, "flip_rate"),
    ({"training": {"beta": 0}}, "beta"),
    ({"training": {"pair_weighting": "votes"}}, "pair_weighting"),
    ({"data": {"validation_fraction": 1.0}}, "validation_fraction"),
    ({"data": {"uncertainty_filter_fraction": 1.0}}, "uncertainty_filter_fraction"),
    ({"training": {"method": "vote"}}, "training.method: method must be one of majority, soft, em, rdpo, upo"),
    ({"training": {"method": "rdpo", "losses": ["ipo"]}}, "trains with the 'robust' loss"),
    ({"training": {"method": "em", "pair_weighting": "fixed"}}, "contradicts"),
    ({"model": {"adapter": "qlora"}}, "model.adapter"),
    ({"model": {"lr": 1}}, "unknown model fields"),
    ({"optimizer": {}}, "unknown recipe groups"),
])
def test_recipe_rejects_bad_values_naming_the_field(data, message):
    with pytest.raises(RecipeError, match=message):
        TrainingRecipe.from_dict(data)


def test_trl_losses_run_on_trl_and_the_rest_on_duets_loss():
    assert not TrainingRecipe.from_dict({"training": {"losses": ["robust", "hinge"]}}).training.needs_duet_loss
    assert TrainingRecipe.from_dict({"training": {"losses": ["cdpo"]}}).training.needs_duet_loss
    assert TrainingRecipe.from_dict({"training": {"pair_weighting": "em"}}).training.needs_duet_loss


def test_posterior_weights_start_from_the_flip_rate_when_one_is_known():
    training = TrainingRecipe.from_dict({"training": {"pair_weighting": "em"}}).training
    assert training.uses_flip_rate
    assert training.prior_reliability(0.3) == pytest.approx(0.7)
    assert training.prior_reliability(0.0) == training.prior_reliability(None) == 0.8
    pinned = TrainingRecipe.from_dict({"training": {"pair_weighting": "em", "em_prior_reliability": 0.9}})
    assert pinned.training.prior_reliability(0.3) == 0.9


def test_every_recipe_loss_is_in_the_registry():
    from training.recipes.losses import LOSSES

    assert set(LOSSES) == set(DPO_LOSSES)


def test_importing_the_entry_points_and_building_a_recipe_loads_no_torch():
    import subprocess

    code = ("import sys; from training.recipes import TrainingRecipe, train_dpo, train_reward_model; "
            "TrainingRecipe(); print('torch' in sys.modules or 'trl' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
