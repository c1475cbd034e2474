"""A saved folder must load as Hub remote code where hf_ser cannot be imported."""

import json
import re

import numpy as np
import pytest
import torch
from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

from .conftest import run_fresh_python

SCRIPT = r"""
import json, sys
sys.modules["hf_ser"] = None  # any "import hf_ser" now raises ImportError
import numpy as np, torch
from transformers import AutoFeatureExtractor, AutoModel, AutoModelForAudioClassification
folder, wave_file = sys.argv[1], sys.argv[2]
try:
    import hf_ser  # noqa
    raise SystemExit("hf_ser should not be importable here")
except ImportError:
    pass
wave = np.load(wave_file)
fe = AutoFeatureExtractor.from_pretrained(folder, trust_remote_code=True)
clf = AutoModelForAudioClassification.from_pretrained(folder, trust_remote_code=True).eval()
base = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
inputs = fe([wave, wave[: len(wave) // 3]], sampling_rate=16000, return_tensors="pt")
with torch.no_grad():
    logits = clf(**inputs).logits
    pooled = base(**inputs).pooler_output
print(json.dumps({"fe": type(fe).__module__, "clf": type(clf).__module__, "logits": logits.tolist(),
                  "pooled": pooled[:, :5].tolist()}))
"""


def test_remote_code_loads_without_hf_ser(model_dir, voice, tmp_path):
    config = json.loads((model_dir / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_ser.SERConfig",
        "AutoModel": "modeling_ser.SERModel",
        "AutoModelForAudioClassification": "modeling_ser.SERForAudioClassification",
    }
    pre = json.loads((model_dir / "preprocessor_config.json").read_text())
    assert pre["auto_map"] == {"AutoFeatureExtractor": "feature_extraction_ser.SERFeatureExtractor"}
    for name in ["configuration_ser.py", "modeling_ser.py", "feature_extraction_ser.py"]:
        source = (model_dir / name).read_text()
        assert not re.search(r"^\s*(from|import)\s+hf_ser", source, re.M), f"{name} must not import hf_ser"

    wave = voice(2.0, 16000)
    np.save(tmp_path / "wave.npy", wave)
    remote = run_fresh_python(SCRIPT, [str(model_dir), str(tmp_path / "wave.npy")], tmp_path)
    assert remote["clf"].startswith("transformers_modules") and remote["fe"].startswith("transformers_modules")

    fe = AutoFeatureExtractor.from_pretrained(model_dir)
    model = AutoModelForAudioClassification.from_pretrained(model_dir).eval()
    with torch.no_grad():
        local = model(**fe([wave, wave[: len(wave) // 3]], return_tensors="pt")).logits
        pooled = model.ser(**fe([wave, wave[: len(wave) // 3]], return_tensors="pt")).pooler_output
    torch.testing.assert_close(torch.tensor(remote["logits"]), local, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.tensor(remote["pooled"]), pooled[:, :5], atol=1e-5, rtol=0)


PIPELINE_SCRIPT = r"""
import json, sys
sys.modules["hf_ser"] = None  # hf-ser is not installed for this user
import transformers.pipelines.audio_classification as stock
def forbidden(*args, **kwargs):
    raise SystemExit("ffmpeg was called")
stock.ffmpeg_read = forbidden
from transformers import pipeline
folder, flac, wav8k, npy = sys.argv[1:5]
import numpy as np
clf = pipeline(model=folder, trust_remote_code=True)  # task and class from config.custom_pipelines
out = {"class": type(clf).__module__ + "." + type(clf).__name__}
with open(wav8k, "rb") as handle:
    raw = handle.read()
wave = np.load(npy)
for key, inputs in [("path", flac), ("bytes", raw), ("dict", {"array": wave, "sampling_rate": 8000}),
                    ("raw", {"raw": wave, "sampling_rate": 8000})]:
    out[key] = {d["label"]: d["score"] for d in clf(inputs, top_k=None)}
print(json.dumps(out))
"""


def test_remote_pipeline_decodes_files_without_hf_ser(model_dir, voice, tmp_path):
    import soundfile as sf

    from hf_ser import load_classifier

    stereo = np.stack([voice(1.5, 48000), voice(1.5, 48000, seed=3)], axis=1)
    sf.write(tmp_path / "clip.flac", stereo, 48000)
    sf.write(tmp_path / "clip8k.wav", voice(1.2, 8000, seed=5), 8000)
    np.save(tmp_path / "wave.npy", voice(1.2, 8000, seed=5))
    args = [str(model_dir), str(tmp_path / "clip.flac"), str(tmp_path / "clip8k.wav"), str(tmp_path / "wave.npy")]
    remote = run_fresh_python(PIPELINE_SCRIPT, args, tmp_path)
    assert remote["class"].startswith("transformers_modules") and remote["class"].endswith(
        "SERAudioClassificationPipeline"
    )
    local = load_classifier(model_dir)
    expected = {
        "path": local(str(tmp_path / "clip.flac"), top_k=None),
        "bytes": local(str(tmp_path / "clip8k.wav"), top_k=None),
    }
    expected["dict"] = expected["raw"] = expected["bytes"]
    for key, result in expected.items():
        scores = {d["label"]: d["score"] for d in result}
        assert remote[key].keys() == scores.keys()
        for label, score in scores.items():
            assert abs(remote[key][label] - score) < 1e-5, (key, label)


BUNDLED_PIPELINE_SCRIPT = r"""
import json, sys
import numpy as np
from transformers import pipeline
name, folder, npy = sys.argv[1:4]
assert "hf_ser" not in sys.modules
clf = pipeline(model=folder, trust_remote_code=True)  # hf-ser installed, its classes not yet registered
wave = np.load(npy)
out = {"class": type(clf).__module__ + "." + type(clf).__name__, "model": type(clf.model).__module__,
       "scores": {d["label"]: d["score"] for d in clf({"raw": wave, "sampling_rate": 16000}, top_k=None)}}
from hf_ser import load_classifier
out["reference"] = {d["label"]: d["score"] for d in load_classifier(name)({"raw": wave, "sampling_rate": 16000},
                                                                         top_k=None)}
print(json.dumps(out))
"""


@pytest.mark.parametrize("name", ["ser-general", "ser-whisper-general"])
def test_bundled_folder_runs_in_transformers_pipeline_with_trust_remote_code(name, voice, tmp_path):
    """A bundled folder holds no code, only pointers to the installed hf-ser: the stock call a transformers user makes
    on it (``trust_remote_code=True``, no hf-ser import) had failed with "does not appear to have a file named
    configuration_ser.py"; it now builds hf-ser's pipeline and answers as ``load_classifier`` does."""
    from hf_ser.inference import bundled_checkpoints

    np.save(tmp_path / "wave.npy", voice(2.0, 16000))
    args = [name, str(bundled_checkpoints()[name]), str(tmp_path / "wave.npy")]
    out = run_fresh_python(BUNDLED_PIPELINE_SCRIPT, args, tmp_path)
    assert out["class"] == "hf_ser.models.ser.pipeline_ser.SERAudioClassificationPipeline"
    assert out["model"].startswith("hf_ser.models.ser.")  # the installed classes, not a copy
    assert out["scores"].keys() == out["reference"].keys()
    for label, score in out["reference"].items():
        assert out["scores"][label] == pytest.approx(score, abs=1e-6)  # calibrated scores, as load_classifier's


@pytest.mark.parametrize("name", ["ser-general", "ser-whisper-general"])
def test_auto_processor_gives_the_feature_extractor_without_asking_about_custom_code(name, monkeypatch):
    """``AutoProcessor.from_pretrained`` (what audio tutorials load) fell back through AutoTokenizer and the image
    processors and asked "Do you wish to run the custom code? [y/N]" on the terminal, also with hf-ser's classes
    registered; each family's feature extractor is now its registered processor."""
    import builtins

    from transformers import AutoFeatureExtractor, AutoProcessor

    from hf_ser.inference import bundled_checkpoints
    from hf_ser.models import registry  # noqa: F401  (registers the classes)

    asked = []
    monkeypatch.setattr(builtins, "input", lambda *args: asked.append(args) or "n")
    folder = bundled_checkpoints()[name]
    processor = AutoProcessor.from_pretrained(folder)
    assert not asked
    extractor = AutoFeatureExtractor.from_pretrained(folder)
    assert type(processor) is type(extractor) and processor.to_dict() == extractor.to_dict()
