import librosa
import numpy as np
import pytest
import torch

from hf_ser import SERFeatureExtractor

from .conftest import PAPER_FEATURES

PAPER = dict(sampling_rate=22050, n_mfcc=20, n_fft=2048, hop_length=512, win_length=None, n_mels=128, top_db=80)


def librosa_mfcc(wave, **kw):
    """librosa's MFCC of the wave without its DC offset (the extractor's ``remove_dc_offset``, on by default)."""
    return librosa.feature.mfcc(
        y=wave - wave.mean(),
        sr=kw["sampling_rate"],
        n_mfcc=kw["n_mfcc"],
        n_fft=kw["n_fft"],
        hop_length=kw["hop_length"],
        win_length=kw.get("win_length"),
        n_mels=kw["n_mels"],  # power_to_db uses top_db=80
    ).T


def signals(rng, rate):
    lengths = [700, 2047, 2048, 5000, rate, int(3.3 * rate), 10 * rate]
    out = []
    for n in lengths:
        t = np.arange(n) / rate
        out.append((0.4 * np.sin(2 * np.pi * 200 * t * (1 + t)) + 0.05 * rng.standard_normal(n)).astype(np.float32))
    return out


@pytest.mark.filterwarnings("ignore:n_fft=")
def test_matches_librosa_alone_and_in_batch(rng):
    fe = SERFeatureExtractor(**PAPER, do_normalize=False)
    waves = signals(rng, 22050)
    batch = fe(waves, sampling_rate=22050, return_tensors="np")
    assert batch["input_features"].dtype == np.float32
    for i, wave in enumerate(waves):
        ref = librosa_mfcc(wave, **PAPER)
        frames = int(batch["attention_mask"][i].sum())
        assert frames == ref.shape[0]
        np.testing.assert_allclose(batch["input_features"][i, :frames], ref, atol=1e-3, rtol=0)
        assert np.all(batch["input_features"][i, frames:] == 0.0)
        alone = fe(wave, sampling_rate=22050, return_tensors="np")["input_features"][0]
        np.testing.assert_allclose(alone, ref, atol=1e-3, rtol=0)


def test_default_settings_match_librosa(rng):
    fe = SERFeatureExtractor(do_normalize=False)
    wave = signals(rng, 16000)[5]
    ref = librosa.feature.mfcc(y=wave, sr=16000, n_mfcc=40, n_fft=512, hop_length=160, win_length=400, n_mels=64)
    raw = SERFeatureExtractor(do_normalize=False, remove_dc_offset=False)
    np.testing.assert_allclose(raw(wave, return_tensors="np")["input_features"][0], ref.T, atol=1e-3, rtol=0)
    centred = librosa.feature.mfcc(
        y=wave - wave.mean(), sr=16000, n_mfcc=40, n_fft=512, hop_length=160, win_length=400, n_mels=64
    )
    np.testing.assert_allclose(fe(wave, return_tensors="np")["input_features"][0], centred.T, atol=1e-3, rtol=0)


def test_a_dc_offset_leaves_the_features_as_they_were(rng):
    """A constant added to the samples (a sound card's DC offset) filled the lowest mel band and lifted the silent
    frames off the top_db floor: 1 % of full scale changed the bundled tiny model's answer on 17 of 30 RAVDESS
    clips. Speech with silence around it, as recorded clips have, at offsets of 0.3 % to 30 % of full scale."""
    from hf_ser.models.ser.mfcc_features_ser import dct_matrix, features_numpy, mel_basis, prepared_wave

    fe = SERFeatureExtractor(mean_normalization="level")
    speech = signals(rng, 16000)[5]
    wave = np.concatenate([np.zeros(8000, np.float32), speech, np.zeros(8000, np.float32)])
    clean = fe(wave, return_tensors="np")["input_features"][0]
    settings = fe.to_dict()
    mel, dct = mel_basis(512, 64, 0.0, 8000.0, 16000), dct_matrix(64, 40)
    for offset in (0.003, 0.01, 0.3):
        shifted = fe(wave + np.float32(offset), return_tensors="np")["input_features"][0]
        np.testing.assert_allclose(shifted, clean, atol=2e-2, rtol=0)  # float32 rounding of the shifted samples
        before = SERFeatureExtractor(mean_normalization="level", remove_dc_offset=False)
        assert np.abs(before(wave + np.float32(offset), return_tensors="np")["input_features"][0] - clean).max() > 5
        numpy_path = features_numpy(prepared_wave(wave + np.float32(offset), 16000), settings, mel, dct)  # ONNX
        np.testing.assert_allclose(numpy_path, clean, atol=2e-2, rtol=0)


def test_batch_equals_alone_with_normalisation(rng):
    fe = SERFeatureExtractor(do_normalize=True)
    waves = signals(rng, 16000)[:5]
    batch = fe(waves, return_tensors="pt")
    assert batch["input_features"].shape == (5, fe.num_frames(max(w.size for w in waves)), 40)
    for i, wave in enumerate(waves):
        alone = fe(wave, return_tensors="pt")["input_features"][0]
        torch.testing.assert_close(batch["input_features"][i, : alone.shape[0]], alone, atol=1e-5, rtol=0)
        valid = alone.numpy()
        np.testing.assert_allclose(valid.mean(axis=0), 0, atol=1e-4)


def test_return_types(rng):
    fe = SERFeatureExtractor()
    waves = signals(rng, 16000)[:3]
    pt = fe(waves, return_tensors="pt")
    assert isinstance(pt["input_features"], torch.Tensor) and pt["attention_mask"].dtype == torch.int32
    lists = fe(waves)
    assert [x.shape[0] for x in lists["input_features"]] == [fe.num_frames(w.size) for w in waves]
    two_d = fe(np.stack([waves[0][:700], waves[1][:700]]), return_tensors="np")
    assert two_d["input_features"].shape[0] == 2


def test_int16_scaled(rng):
    fe = SERFeatureExtractor(do_normalize=False)
    wave = signals(rng, 16000)[4]
    as_int = np.round(wave * 32767).astype(np.int16)
    expected = fe(as_int.astype(np.float32) / 32768.0, return_tensors="np")["input_features"]
    np.testing.assert_allclose(fe(as_int, return_tensors="np")["input_features"], expected, atol=1e-4)


def test_silence_gives_finite_features():
    fe = SERFeatureExtractor()
    out = fe(np.zeros(16000, dtype=np.float32), return_tensors="np")["input_features"]
    assert np.isfinite(out).all()


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros(0, dtype=np.float32), "empty audio"),
        (np.array([0.0, np.nan, 0.1], dtype=np.float32), "non-finite"),
        (np.array([0.0, np.inf, 0.1], dtype=np.float32), "non-finite"),
        (np.zeros((2, 3, 100), dtype=np.float32), r"shape \(2, 3, 100\)"),
        (np.array(["a", "b"]), "numeric"),
    ],
)
def test_bad_input(bad, message):
    with pytest.raises(ValueError, match=message):
        SERFeatureExtractor()(bad)


def test_stereo_is_rejected_with_its_shape():
    with pytest.raises(ValueError, match=r"shape \(16000, 2\)"):
        SERFeatureExtractor()([np.zeros((16000, 2), dtype=np.float32)])


def test_wrong_sampling_rate_names_both():
    with pytest.raises(ValueError, match="44100.*16000"):
        SERFeatureExtractor()(np.zeros(100, dtype=np.float32), sampling_rate=44100)


def test_invalid_parameter_named():
    with pytest.raises(ValueError, match="n_mfcc"):
        SERFeatureExtractor(n_mfcc=100, n_mels=64)


def test_offset_and_duration_crop_or_pad(rng):
    fe = SERFeatureExtractor(sampling_rate=22050, max_duration=2.5, offset=0.6, do_normalize=False)
    plain = SERFeatureExtractor(sampling_rate=22050, do_normalize=False)
    long_wave = signals(rng, 22050)[6]
    short_wave = long_wave[:22050]
    out = fe([long_wave, short_wave], return_tensors="np")
    assert out["input_features"].shape[1] == plain.num_frames(int(2.5 * 22050))
    assert out["attention_mask"].all()
    cropped = long_wave[int(0.6 * 22050) : int(0.6 * 22050) + int(2.5 * 22050)]
    np.testing.assert_allclose(
        out["input_features"][0], plain(cropped, return_tensors="np")["input_features"][0], atol=1e-4
    )
    kept = short_wave[int(0.6 * 22050) :]
    padded = np.pad(kept - kept.mean(), (0, int(2.5 * 22050) - (22050 - int(0.6 * 22050))))  # the mean goes first
    raw = SERFeatureExtractor(sampling_rate=22050, do_normalize=False, remove_dc_offset=False)
    np.testing.assert_allclose(
        out["input_features"][1], raw(padded, return_tensors="np")["input_features"][0], atol=1e-4
    )


def test_save_load_round_trip(tmp_path):
    fe = SERFeatureExtractor(**PAPER_FEATURES)
    fe.save_pretrained(tmp_path)
    loaded = SERFeatureExtractor.from_pretrained(tmp_path)
    for key in [
        "sampling_rate",
        "n_mfcc",
        "n_fft",
        "hop_length",
        "win_length",
        "n_mels",
        "f_min",
        "f_max",
        "top_db",
        "center",
        "do_normalize",
        "max_duration",
        "offset",
    ]:
        assert getattr(loaded, key) == getattr(fe, key), key
    assert (tmp_path / "preprocessor_config.json").read_text().count('"n_mfcc": 20') == 1


def _harmonic_sweep(sr: int = 16000, seconds: float = 2.0, start: float = 120.0, slope: float = 60.0) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    phase = 2 * np.pi * np.cumsum(start + slope * t) / sr
    return sum(np.sin(k * phase) / k for k in range(1, 5)).astype(np.float32)


def test_yin_matches_librosa():
    from hf_ser.models.ser.mfcc_features_ser import yin_torch as _yin

    y = _harmonic_sweep()
    reference = librosa.yin(y, fmin=65, fmax=500, sr=16000, frame_length=1024, hop_length=160)
    f0, aperiodicity, energy = _yin(torch.from_numpy(y)[None], 16000, 160, 1024, 65, 500)
    np.testing.assert_allclose(f0[0].numpy(), reference, rtol=1e-4)
    assert float(aperiodicity[0, 10:-10].max()) < 0.1 and energy.shape == f0.shape


def test_prosody_channels_pitch_voicing_and_gain_invariance():
    sr = 16000
    tone = np.concatenate([np.zeros(sr // 2, np.float32), _harmonic_sweep(sr, 1.0, 200.0, 0.0)])  # 200 Hz
    fe = SERFeatureExtractor(feature_type="log_mel", mean_normalization="level", prosody=True)
    assert fe.feature_size == 66
    feats = fe(tone)["input_features"][0]
    pitch, voicing = feats[:, -2], feats[:, -1]
    assert np.all(voicing[:40] == 0)  # digital silence is not voiced
    assert voicing[60:-10].min() > 0.9
    np.testing.assert_allclose(pitch[60:-10], 12.0, atol=0.05)  # 200 Hz = 12 semitones above 100 Hz
    np.testing.assert_allclose(pitch[:40], pitch[60:-10].mean(), atol=0.05)  # unvoiced: the mean voiced pitch
    quiet = fe(tone * 0.05)["input_features"][0]
    np.testing.assert_allclose(quiet[:, -2:], feats[:, -2:], atol=1e-3)
    plain = SERFeatureExtractor(feature_type="log_mel", mean_normalization="level")(tone)["input_features"][0]
    np.testing.assert_allclose(feats[:, :-2], plain, atol=1e-6)  # spectral channels untouched
    with pytest.raises(ValueError, match="invalid prosody"):
        SERFeatureExtractor(prosody=True, center=False)
    with pytest.raises(ValueError, match="invalid pitch_frame_length"):
        SERFeatureExtractor(prosody=True, pitch_frame_length=200)


@pytest.mark.real_data
def test_prosody_pitch_on_real_speech_matches_librosa():
    import soundfile as sf

    from .conftest import SHARED_CORPORA

    y, sr = sf.read(sorted((SHARED_CORPORA / "emodb" / "wav").glob("*.flac"))[0], dtype="float32")
    feats = SERFeatureExtractor(feature_type="log_mel", prosody=True)(y)["input_features"][0]
    voiced = feats[:, -1] > 0.5
    reference = librosa.yin(y, fmin=65, fmax=500, sr=sr, frame_length=1024, hop_length=160)
    ours_hz = 100 * 2 ** (feats[voiced, -2] / 12)
    assert voiced.mean() > 0.2
    np.testing.assert_allclose(ours_hz, reference[voiced], rtol=1e-3)


def test_trim_cuts_the_silence_at_a_clips_ends_as_librosa_does(rng):
    """``trim_db``: the span of frames within that many dB of the loudest, plus ``trim_margin`` each side, found as
    ``librosa.effects.trim`` finds it (to within a hop: librosa centres its frames); the torch extractor and the
    numpy path of the ONNX runtime both take it from ``prepared_wave``, and it is off unless set."""
    from hf_ser.models.ser.mfcc_features_ser import dct_matrix, features_numpy, mel_basis, prepared_wave, sound_span

    speech = signals(rng, 16000)[4]  # 1 s
    wave = np.concatenate([np.zeros(12000, np.float32), speech, rng.normal(0, 1e-5, 20000).astype(np.float32)])
    start, end = sound_span(wave, 16000, below_peak_db=60, margin=0.0)
    _, (ref_start, ref_end) = librosa.effects.trim(wave, top_db=60, frame_length=512, hop_length=128)
    assert abs(start - ref_start) <= 384 and abs(end - ref_end) <= 384
    assert abs(start - 12000) <= 512 and abs(end - 28000) <= 512
    fe = SERFeatureExtractor(trim_db=60, trim_margin=0.25)
    centred = (wave - wave.mean(dtype=np.float64)).astype(np.float32)  # the DC offset goes first, then the ends
    first, last = sound_span(centred, 16000, below_peak_db=60, margin=0.25)
    raw = SERFeatureExtractor(remove_dc_offset=False)
    expected = raw(centred[first:last], return_tensors="np")["input_features"][0]
    got = fe(wave, return_tensors="np")["input_features"][0]
    np.testing.assert_allclose(got, expected, atol=1e-3)
    settings = fe.to_dict()
    mel, dct = mel_basis(512, 64, 0.0, 8000.0, 16000), dct_matrix(64, 40)
    numpy_path = features_numpy(prepared_wave(wave, 16000, trim_db=60, trim_margin=0.25), settings, mel, dct)
    np.testing.assert_allclose(numpy_path, got, atol=1e-3)
    assert SERFeatureExtractor()(wave, return_tensors="np")["input_features"].shape[1] == 1 + wave.size // 160
    with pytest.raises(ValueError, match="invalid trim_db=0"):
        SERFeatureExtractor(trim_db=0)


def _extractors():
    from hf_ser.models.ser.feature_extraction_ser_whisper import SERWhisperFeatureExtractor

    return [SERFeatureExtractor(), SERWhisperFeatureExtractor()]


@pytest.mark.parametrize("fe", _extractors(), ids=["mfcc", "whisper"])
def test_length_arguments_are_honoured_as_transformers_extractors_take_them(fe, voice):
    """`fe(waves, max_length=16000, truncation=True)` (the audio-classification tutorial's call) gave every clip's
    whole frames: both extractors took padding, max_length and truncation in **kwargs and ignored them."""
    waves = [voice(1.5, 16000, seed=1), voice(2.5, 16000, seed=2)]
    plain = fe(waves, sampling_rate=16000, return_tensors="np")
    cut = fe(waves, sampling_rate=16000, return_tensors="np", max_length=16000, truncation=True)
    alone = fe([w[:16000] for w in waves], sampling_rate=16000, return_tensors="np")
    np.testing.assert_array_equal(cut["input_features"], alone["input_features"])  # cut before the features
    assert cut["input_features"].shape[1] < plain["input_features"].shape[1]
    padded = fe(waves, sampling_rate=16000, return_tensors="np", padding="max_length", max_length=48000)
    longest = plain["input_features"].shape[1]
    assert padded["input_features"].shape[1] == fe(np.zeros(48000), return_tensors="np")["input_features"].shape[1]
    np.testing.assert_array_equal(padded["input_features"][:, :longest], plain["input_features"])
    assert (padded["input_features"][:, longest:] == fe.padding_value).all()
    np.testing.assert_array_equal(padded["attention_mask"].sum(1), plain["attention_mask"].sum(1))  # padding is off
    as_lists = fe(waves, sampling_rate=16000, padding="max_length", max_length=48000)  # return_tensors=None
    assert [len(f) for f in as_lists["input_features"]] == [padded["input_features"].shape[1]] * 2
    rounded = fe(waves, sampling_rate=16000, return_tensors="np", pad_to_multiple_of=64)
    assert rounded["input_features"].shape[1] == -(-longest // 64) * 64
    assert "attention_mask" not in fe(waves, return_tensors="np", return_attention_mask=False)
    for kwargs, error, message in [
        ({"padding": "max_length", "max_length": 16000}, ValueError, "more than max_length=16000 samples give"),
        ({"truncation": True}, ValueError, "truncation=True needs max_length"),
        ({"padding": False}, ValueError, "padding=False: a batch is padded to its longest clip"),
        ({"padding": "everything"}, ValueError, "padding must be True, 'longest' or 'max_length'"),
        ({"max_length": 0, "truncation": True}, ValueError, "max_length must be a whole number >= 1"),
        ({"do_normalise": True}, TypeError, r"unexpected argument\(s\) \['do_normalise'\]"),
    ]:
        with pytest.raises(error, match=message):
            fe(waves, sampling_rate=16000, **kwargs)
