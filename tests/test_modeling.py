import pytest
import torch
from huggingface_hub.errors import StrictDataclassClassValidationError

from hf_ser import SERConfig, SERFeatureExtractor, SERForAudioClassification, SERModel

from .conftest import PAPER_FEATURES, make_model

CONFIG_ERRORS = (ValueError, StrictDataclassClassValidationError)


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def features(waves, **kw):
    return SERFeatureExtractor(**kw)(waves, return_tensors="pt")


def test_default_model_is_small_and_paper_preset_matches_paper():
    default = SERForAudioClassification(SERConfig(num_labels=8))
    assert n_params(default) <= 1_000_000
    paper = SERForAudioClassification(SERConfig.paper_preset(num_labels=7))
    convs = [m for m in paper.modules() if isinstance(m, torch.nn.Conv1d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0]) for c in convs] == [
        (20, 256, 7),
        (256, 256, 7),
        (2, 1, 7),
    ]
    mlp = paper.ser.channel_attention.mlp
    assert (mlp[0].in_features, mlp[0].out_features, mlp[2].out_features) == (256, 16, 256)
    assert paper.classifier.dense.in_features == 256 * 108


def test_padding_invariance(tmp_path, voice):
    model = SERForAudioClassification.from_pretrained(make_model(tmp_path)).eval()
    waves = [voice(3.0, 16000, seed=0), voice(1.1, 16000, pitch=250, seed=1), voice(0.4, 16000, seed=2)]
    batch = features(waves)
    with torch.no_grad():
        batched = model(**batch).logits
        for i, wave in enumerate(waves):
            alone = model(**features(wave)).logits[0]
            torch.testing.assert_close(batched[i], alone, atol=1e-4, rtol=0)
    assert (batched[0] - batched[1]).abs().max() > 1e-2  # the logits do depend on the input


@pytest.mark.parametrize("pooling", ["mean", "stats", "input_bn", "attentive_stats", "residual"])
@pytest.mark.parametrize("attention", [(True, True), (False, True), (True, False), (False, False)])
def test_variants_run_and_stay_padding_invariant(tmp_path, voice, pooling, attention):
    cfg = dict(use_channel_attention=attention[0], use_spatial_attention=attention[1])
    special = {
        "input_bn": dict(pooling="stats", input_batch_norm=True),
        "residual": dict(pooling="stats", residual=True, conv_channels=[64, 64, 128]),
    }
    cfg.update(special.get(pooling, dict(pooling=pooling)))
    model = SERForAudioClassification.from_pretrained(make_model(tmp_path, config_kwargs=cfg)).eval()
    assert (model.ser.channel_attention is not None) == attention[0]
    waves = [voice(2.0, 16000), voice(0.7, 16000, seed=3)]
    with torch.no_grad():
        batched = model(**features(waves)).logits
        alone = model(**features(waves[1])).logits[0]
    torch.testing.assert_close(batched[1], alone, atol=1e-4, rtol=0)


def test_a_head_without_conv_blocks_reads_the_frames_and_stays_padding_invariant():
    empty = {"conv_channels": [], "conv_kernel_sizes": [], "conv_dilations": [], "conv_pool_sizes": []}
    model = SERForAudioClassification(SERConfig(num_mfcc=16, input_batch_norm=True, num_labels=3, **empty)).eval()
    assert len(model.ser.conv_blocks) == 0 and model.ser.output_size == 2 * 16  # mean and std of the 16 inputs
    torch.manual_seed(0)
    x, mask = torch.randn(2, 30, 16), torch.ones(2, 30, dtype=torch.long)
    mask[1, 20:] = 0
    with torch.no_grad():
        torch.testing.assert_close(model(x, attention_mask=mask).logits[1], model(x[1:, :20]).logits[0])


def test_flatten_needs_fixed_frames(voice):
    model = SERForAudioClassification(SERConfig.paper_preset(num_labels=7)).eval()
    fe = SERFeatureExtractor(**PAPER_FEATURES)
    out = model(**fe([voice(3.0, 22050), voice(1.0, 22050)], return_tensors="pt"))
    assert out.logits.shape == (2, 7)
    with pytest.raises(ValueError, match="num_frames=108"):
        model(input_features=torch.zeros(1, 50, 20))
    with pytest.raises(CONFIG_ERRORS, match="num_frames"):
        SERConfig(pooling="flatten")


def test_loss_and_class_weights():
    torch.manual_seed(0)
    feats = torch.randn(4, 30, 40)
    labels = torch.tensor([0, 1, 2, 1])
    model = SERForAudioClassification(SERConfig(num_labels=3)).eval()
    out = model(input_features=feats, labels=labels)
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(out.logits, labels))
    weights = [1.0, 2.0, 0.5]
    weighted = SERForAudioClassification(SERConfig(num_labels=3, class_weights=weights))
    weighted.load_state_dict(model.state_dict())
    weighted.eval()
    out_w = weighted(input_features=feats, labels=labels)
    expected = torch.nn.functional.cross_entropy(out_w.logits, labels, weight=torch.tensor(weights))
    torch.testing.assert_close(out_w.loss, expected)
    with pytest.raises(CONFIG_ERRORS, match="class_weights has 2 entries"):
        SERConfig(num_labels=3, class_weights=[1.0, 2.0])


def test_config_validation_names_fields():
    with pytest.raises(CONFIG_ERRORS, match="conv_kernel_sizes"):
        SERConfig(conv_channels=[8, 8], conv_kernel_sizes=[3], conv_dilations=[1, 1])
    with pytest.raises(CONFIG_ERRORS, match="pooling"):
        SERConfig(pooling="attention")


def test_base_model_outputs(voice):
    model = SERModel(SERConfig()).eval()
    out = model(**features([voice(1.0, 16000)]), output_hidden_states=True)
    assert out.last_hidden_state.shape[-1] == 128
    assert out.pooler_output.shape == (1, 256)
    assert len(out.hidden_states) == 3
    with pytest.raises(ValueError, match="input_features must be"):
        model(input_features=torch.zeros(1, 10, 13))


def test_save_load_round_trip(tmp_path, voice):
    folder = make_model(tmp_path)
    model = SERForAudioClassification.from_pretrained(folder).eval()
    assert (folder / "model.safetensors").is_file()
    again_dir = tmp_path / "again"
    model.save_pretrained(again_dir)
    again = SERForAudioClassification.from_pretrained(again_dir).eval()
    batch = features([voice(1.0, 16000)])
    torch.testing.assert_close(model(**batch).logits, again(**batch).logits)


def test_return_dict_false_gives_tuples(tmp_path, voice):
    model = SERForAudioClassification.from_pretrained(make_model(tmp_path)).eval()
    inputs = features(voice(1.0, 16000))
    labels = torch.tensor([1])
    with torch.no_grad():
        out = model(**inputs, labels=labels)
        loss, logits = model(**inputs, labels=labels, return_dict=False)
        (last, pooled) = model.ser(**inputs, return_dict=False)
    assert isinstance(out.logits, torch.Tensor)
    torch.testing.assert_close(logits, out.logits)
    torch.testing.assert_close(loss, out.loss)
    torch.testing.assert_close(pooled, model.ser(**inputs).pooler_output)
    model.config.return_dict = False
    with torch.no_grad():
        assert isinstance(model(**inputs), tuple)


def test_ensemble_averages_member_probabilities_and_losses():
    torch.manual_seed(0)
    model = SERForAudioClassification(SERConfig(num_labels=4, num_mfcc=10, ensemble_size=3)).eval()
    first = model.ser.conv_blocks[0].conv.weight
    assert not torch.allclose(first, model.members[0].ser.conv_blocks[0].conv.weight)  # initialised differently
    x, mask = torch.randn(2, 50, 10), torch.ones(2, 50, dtype=torch.long)
    labels = torch.tensor([1, 3])
    out = model(x, attention_mask=mask, labels=labels)
    with torch.no_grad():
        members = [model.classifier(model.ser(x, attention_mask=mask).pooler_output)]
        members += [m(x, mask) for m in model.members]
    mean_probs = torch.stack([m.softmax(-1) for m in members]).mean(0)
    torch.testing.assert_close(out.logits.softmax(-1), mean_probs)
    expected_loss = torch.stack([torch.nn.functional.cross_entropy(m, labels) for m in members]).mean()
    torch.testing.assert_close(out.loss, expected_loss)
    with pytest.raises(StrictDataclassClassValidationError, match="ensemble_size must be >= 1"):
        SERConfig(ensemble_size=0)


def test_new_labels_reach_every_ensemble_head():
    from hf_ser.finetune import adapt_head

    config = SERConfig(num_labels=3, num_mfcc=10, ensemble_size=2, id2label={0: "neutral", 1: "angry", 2: "sad"})
    model = SERForAudioClassification(config).eval()
    kept = [h.out_proj.weight[1].clone() for h in model.heads()]
    assert adapt_head(model, ["angry", "bored"]) == ["bored"]
    for head, before in zip(model.heads(), kept):
        assert head.out_proj.out_features == 2 and torch.equal(head.out_proj.weight[0], before)  # angry kept
    assert model(torch.randn(1, 30, 10)).logits.shape == (1, 2)


def test_a_re_headed_model_drops_the_old_heads_calibration(tmp_path, caplog):
    """`from_pretrained(folder, num_labels=2, ignore_mismatched_sizes=True)`, transformers' way to re-head a model
    (the audio-classification tutorial's), kept the temperature fitted to the old head: ser-general's 2.07 flattened
    the new head's scores in every pipeline built on it. The same label set keeps it."""
    import logging

    from transformers import AutoModelForAudioClassification

    folder = make_model(tmp_path, config_kwargs={"temperature": 2.0, "uncertain_below": 0.5})
    with caplog.at_level(logging.WARNING):
        fresh = AutoModelForAudioClassification.from_pretrained(folder, num_labels=2, ignore_mismatched_sizes=True)
    assert (fresh.config.temperature, fresh.config.uncertain_below) == (1.0, None)
    assert "re-initialised for 2 labels: its calibration (temperature 2.00) belonged to the old head" in caplog.text
    kept, info = AutoModelForAudioClassification.from_pretrained(folder, output_loading_info=True)
    assert (kept.config.temperature, kept.config.uncertain_below) == (2.0, 0.5) and not info["mismatched_keys"]
