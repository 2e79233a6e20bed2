"""A probe on more than its head's input (reward_models/feature_probe.py): fitted on pooled states, the
log-probability and the length, saved with probe.json beside the whole backbone, loaded back by
RewardModel.from_pretrained as a FeatureProbe that scores as its features and weights say."""
from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import cue_pairs

from restlm.data.examples import Example
from restlm.errors import ModelLoadError, RestlmError
from restlm.reward_models import RewardModel, pairwise_accuracy
from restlm.reward_models.commands import main_reward_model
from restlm.reward_models.feature_probe import PROBE_FILE, FeatureProbe
from restlm.reward_models.fitting import both_responses
from restlm.reward_models.probe import backbone_layers
from restlm.reward_models.probe_features import probe_features
from restlm.reward_models.probe_runs import run_probe_model
from restlm.rewards import build_reward


def test_a_feature_probe_learns_a_cue_saves_loads_and_is_a_reward(tied_llama_dir, tmp_path):
    train, held_out = cue_pairs(120, seed=0), cue_pairs(40, seed=1)
    metrics = run_probe_model(str(tied_llama_dir), train, held_out, folds=4, out=tmp_path / "rm",
                              pools=("last", "mean"), scalars=("logp", "length"))
    probe = metrics["probe"]
    assert probe["features"] == f"last+mean@{probe['layer']}+logp+length" and probe["layer"] in (1, 2)
    assert json.loads((tmp_path / "rm" / PROBE_FILE).read_text())["feature_set"] == probe["features"]
    assert set(probe["cv_accuracy_by_layer"]) == {"last+mean@1+logp+length", "last+mean@2+logp+length"}
    # the saved model's own scores give the accuracy its features' margins do
    assert metrics["heldout_pairwise_accuracy"] == pytest.approx(metrics["heldout_pairwise_accuracy_from_features"])
    assert metrics["heldout_pairwise_accuracy"] >= 0.8
    saved = RewardModel.from_pretrained(str(tmp_path / "rm"))
    assert isinstance(saved, FeatureProbe) and saved.kind == "causal"
    assert saved.model.config.num_hidden_layers == 2  # the whole backbone: logp reads the last layer
    written = json.loads((tmp_path / "rm" / PROBE_FILE).read_text())
    width = saved.model.config.hidden_size
    assert written["pools"] == ["last", "mean"] and written["scalars"] == ["logp", "length"]
    assert len(written["weights"]) == metrics["trainable_parameters"] == 2 * width + 3
    # score = weights . [last@L, mean@L, logp (sum, mean), length], computed by hand from the features
    prompts, responses = both_responses(held_out[:6])
    found = probe_features(saved, prompts, responses, [saved.layer], ("last", "mean"), ("logp", "length"))
    by_hand = np.hstack([found[f"last@{saved.layer}"], found[f"mean@{saved.layer}"], found["logp"],
                         found["length"]]).astype(np.float64) @ np.array(written["weights"])
    np.testing.assert_allclose(saved.score(prompts, responses), by_hand, rtol=1e-6)
    assert pairwise_accuracy(saved, held_out) == metrics["heldout_pairwise_accuracy"]
    # as a policy's reward, through the same spec as any saved reward model
    reward = build_reward(f"reward_model:{tmp_path / 'rm'}")
    examples = [Example(text=p.prompt) for p in held_out]
    np.testing.assert_allclose(reward(None, examples, [p.chosen for p in held_out]),
                               saved.score(*both_responses(held_out))[: len(held_out)], atol=1e-5)
    with pytest.raises(RestlmError, match="fitted by logistic regression"):
        saved.forward(saved.encode(prompts[:1], responses[:1]))
    # a folder whose probe.json is damaged is one error naming it
    (tmp_path / "rm" / PROBE_FILE).write_text("{")
    with pytest.raises(ModelLoadError, match=PROBE_FILE):
        RewardModel.from_pretrained(str(tmp_path / "rm"))


def test_cli_probe_features(tied_llama_dir, tmp_path, capsys):
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}) + "\n"
                            for p in cue_pairs(60, seed=2)))
    base = ["--model", str(tied_llama_dir), "--data", str(data), "--eval-pairs", "20"]
    assert main_reward_model([*base, "--probe", "--probe-features", "mean,length", "--probe-layers", "1",
                              "--out", str(tmp_path / "rm")]) == 0
    printed = json.loads(capsys.readouterr().out)
    saved = RewardModel.from_pretrained(str(tmp_path / "rm"))
    assert isinstance(saved, FeatureProbe) and (saved.layer, saved.pools, saved.scalars) == (1, ["mean"], ["length"])
    assert printed["probe"]["features"] == "mean@1+length"
    # without logp the saved backbone is cut to the layer read, and scores as the whole one's features said
    assert saved.model.config.num_hidden_layers == 1
    assert printed["heldout_pairwise_accuracy"] == pytest.approx(printed["heldout_pairwise_accuracy_from_features"])
    whole = RewardModel.from_pretrained(str(tied_llama_dir))
    prompts, responses = both_responses(cue_pairs(4, seed=5))
    found = probe_features(whole, prompts, responses, [1], ("mean",), ("length",))
    np.testing.assert_allclose(saved.score(prompts, responses),
                               np.hstack([found["mean@1"], found["length"]]).astype(np.float64) @ saved.weights,
                               rtol=1e-5, atol=1e-6)
    assert printed["trainable_parameters"] == saved.model.config.hidden_size + 1
    # an unknown feature, or features without --probe: one line, exit 2, nothing written
    for flags in (["--probe", "--probe-features", "mean,cls"], ["--probe-features", "mean"]):
        with pytest.raises(SystemExit) as stop:
            main_reward_model([*base, *flags, "--out", str(tmp_path / "other")])
        assert stop.value.code == 2 and "--probe-features" in capsys.readouterr().err
        assert not (tmp_path / "other").exists()


@pytest.mark.parametrize("kind", ["reward_bert_dir", "tied_llama_dir"])
def test_features_of_a_shallow_layer_skip_the_deeper_ones_and_equal_a_full_pass(kind, request):
    """layers=[1] runs layer 1 only (the forward is cut, then whole again); layers=[1, 2] runs both: the
    features of layer 1 are the same either way, and the backbone keeps all its layers after."""
    reward_model = RewardModel.from_pretrained(str(request.getfixturevalue(kind)))
    pairs = cue_pairs(6, seed=5)
    prompts, responses = [p.prompt for p in pairs], [p.chosen for p in pairs]
    seen = []  # (layer, tokens in) of every pass; first_layers' one-token pass over all layers is (i, 1)
    hooks = [layer.register_forward_hook(lambda _, args, __, i=i: seen.append((i, args[0].shape[:2].numel())))
             for i, layer in enumerate(backbone_layers(reward_model))]
    shallow = probe_features(reward_model, prompts, responses, [1], ("last", "mean"), batch_size=4)
    assert {i for i, tokens in seen if tokens > 1} == {0}
    seen.clear()
    full = probe_features(reward_model, prompts, responses, [1, 2], ("last", "mean"), batch_size=4)
    assert {i for i, tokens in seen if tokens > 1} == {0, 1} and reward_model.model.config.num_hidden_layers == 2
    for hook in hooks:
        hook.remove()
    for name in ("last@1", "mean@1"):
        np.testing.assert_allclose(shallow[name], full[name], rtol=1e-5, atol=1e-6)
        assert np.abs(shallow[name]).sum() > 0


@pytest.mark.real
def test_smollm2_feature_probe_on_real_hh_pairs(tmp_path):
    """SmolLM2's mean response state, the response's log-probability and its length (reward_model_features.md's
    features, less `last` to keep the fit quick) on 40 real pairs: the saved probe scores as its features predict."""
    from restlm.data.location import data_root
    from restlm.data.preferences import read_preferences

    pairs = read_preferences(data_root() / "hh_rlhf" / "helpful_base_pairs.jsonl", limit=48)
    metrics = run_probe_model("smollm2", pairs[:40], pairs[40:], layers=[30], folds=4, max_length=64,
                              out=tmp_path / "rm", pools=("mean",), scalars=("logp", "length"))
    assert metrics["heldout_pairwise_accuracy"] == pytest.approx(metrics["heldout_pairwise_accuracy_from_features"])
    saved = RewardModel.from_pretrained(str(tmp_path / "rm"))
    assert isinstance(saved, FeatureProbe) and saved.layer == 30 and saved.model.config.num_hidden_layers == 30
    scores = saved.score([pairs[0].prompt] * 2, [pairs[0].chosen, pairs[0].rejected])
    assert np.all(np.isfinite(scores)) and scores[0] != scores[1]


def test_a_probe_of_scalars_alone_and_the_misuses_of_a_saved_probe(tied_llama_dir, tmp_path, capsys):
    """logp + length alone (no layer read); a saved probe given back as a backbone, with LoRA or another window,
    or with a probe.json that does not fit its backbone: each one line naming what is wrong."""
    train, held_out = cue_pairs(40, seed=3), cue_pairs(12, seed=4)
    metrics = run_probe_model(str(tied_llama_dir), train, held_out, folds=4, out=tmp_path / "rm", pools=(),
                              scalars=("logp", "length"))
    assert metrics["probe"]["features"] == "logp+length" and metrics["trainable_parameters"] == 3
    saved = RewardModel.from_pretrained(str(tmp_path / "rm"))
    assert saved.pools == [] and saved.scalars == ["logp", "length"]
    assert float(saved.model.score.weight.abs().sum()) == 0  # plain transformers reads 0, not a random head
    with pytest.raises(ModelLoadError, match="already a fitted feature probe"):
        run_probe_model(str(tmp_path / "rm"), train, held_out, folds=4)
    with pytest.raises(ValueError, match="scalars alone"):
        run_probe_model(str(tied_llama_dir), train, held_out, layers=[1], folds=4, pools=(), scalars=("length",))
    with pytest.raises(ModelLoadError, match="takes no LoRA"):
        RewardModel.from_pretrained(str(tmp_path / "rm"), lora={"r": 4})
    with pytest.raises(ModelLoadError, match="reads the 256 tokens it was fitted at, not 64"):
        RewardModel.from_pretrained(str(tmp_path / "rm"), max_length=64)
    probe = json.loads((tmp_path / "rm" / PROBE_FILE).read_text())
    for change, message in (({"weights": probe["weights"][:2]}, "2 weights where its features have 3 columns"),
                            ({"layer": 3}, "layer 3 is outside 1..2"), ({"scalars": ["size"]}, "unknown features")):
        (tmp_path / "rm" / PROBE_FILE).write_text(json.dumps({**probe, **change}))
        with pytest.raises(ModelLoadError, match=message):
            RewardModel.from_pretrained(str(tmp_path / "rm"))
    # the command: --probe-layers with scalars alone is refused before anything loads
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}) + "\n"
                            for p in train))
    with pytest.raises(SystemExit) as stop:
        main_reward_model(["--model", str(tied_llama_dir), "--data", str(data), "--probe", "--probe-features",
                           "length", "--probe-layers", "1", "--out", str(tmp_path / "other")])
    assert stop.value.code == 2 and "--probe-layers: a probe of scalars alone" in capsys.readouterr().err
