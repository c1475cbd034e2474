"""Configuration of the SER attention 1D-CNN (self-contained "remote code" file)."""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

POOLING_MODES = ("mean", "stats", "attentive_stats", "flatten")


def validate_calibration(config) -> None:
    """The calibration fields both hf-ser families share (``temperature``, ``uncertain_below``)."""
    if not config.temperature > 0:
        raise ValueError(f"temperature must be > 0, got {config.temperature}")
    if config.uncertain_below is not None and not 0 <= config.uncertain_below < 1:
        raise ValueError(f"uncertain_below must be in [0, 1), got {config.uncertain_below}")


def drop_calibration(config) -> tuple[float, float | None] | None:
    """Reset the calibration fitted to a head that is gone (``temperature`` 1.0, ``uncertain_below`` None).

    One step for every path that leaves a model with a head its calibration was not fitted to: re-heading through
    ``from_pretrained(..., ignore_mismatched_sizes=True)`` and training without validation speakers to refit on.
    Returns the (temperature, uncertain_below) it dropped, for the caller's warning, or None if there was none.
    """
    dropped = (config.temperature, config.uncertain_below)
    config.temperature, config.uncertain_below = 1.0, None
    return dropped if dropped != (1.0, None) else None


@strict
class SERConfig(PreTrainedConfig):
    r"""
    Configuration of [`SERModel`] / [`SERForAudioClassification`]: MFCC frames → 1D conv blocks → channel
    attention → spatial attention → pooling → small classifier (Lee & Nadeem, arXiv 2507.03251).

    Two presets: ``SERConfig()`` is our default (small, any input length, masked statistics pooling) and
    ``SERConfig.paper_preset()`` is the paper's network (2 × Conv1D(256, k=7), flatten over a fixed frame count).

    Args:
        num_mfcc (`int`, defaults to 40):
            Input channels: MFCC coefficients per frame (must equal the feature extractor's ``n_mfcc``).
        input_batch_norm (`bool`, defaults to `False`):
            Batch norm over the MFCC coefficients before the first conv: a learned global standardisation,
            the in-model counterpart of the paper's StandardScaler (use with ``do_normalize=False`` features).
        conv_channels (`list[int]`, defaults to `(64, 128, 128)`):
            Output channels of each conv block; its length is the number of blocks. Empty: no conv blocks, the
            attention and pooling read the input frames themselves (a probe-like head on a pretrained encoder's
            states; the tiny family needs its convs).
        conv_kernel_sizes (`list[int]`, defaults to `(5, 5, 5)`):
            Kernel size (frames, odd) of each conv block; same length as ``conv_channels``.
        conv_dilations (`list[int]`, defaults to `(1, 2, 3)`):
            Dilation of each conv block; same length as ``conv_channels``.
        conv_pool_sizes (`list[int]`, defaults to `(2, 2, 1)`):
            Temporal max-pooling after each conv block (1 = none); shortens the sequence and widens the
            receptive field. Pooling is mask-aware, so padded batches still match single clips.
        conv_activation (`str`, defaults to `"relu"`):
            Activation after each conv (``"relu"`` or ``"gelu"``).
        residual (`bool`, defaults to `False`):
            Residual conv blocks: each block's input (projected by a 1x1 conv when the channel count changes) is
            added to its conv output before the activation.
        use_batch_norm (`bool`, defaults to `True`):
            Batch norm after each conv.
        conv_dropout (`float`, defaults to 0.2):
            Dropout after the last conv block (the paper's ``Dropout(0.2)``).
        use_channel_attention (`bool`, defaults to `True`):
            CBAM channel attention: a shared MLP over mean- and max-pooled time, sigmoid of the sum.
        channel_attention_reduction (`int`, defaults to 16):
            Reduction ratio of that MLP's hidden layer (channels // ratio units, at least 1).
        use_spatial_attention (`bool`, defaults to `True`):
            CBAM spatial attention over time: mean and max over channels → conv → sigmoid.
        spatial_attention_kernel_size (`int`, defaults to 7):
            Kernel size of the spatial-attention conv (odd).
        pooling (`str`, defaults to `"stats"`):
            ``"mean"`` (masked mean over frames), ``"stats"`` (masked mean and standard deviation),
            ``"attentive_stats"`` (mean and standard deviation weighted by a learned per-frame attention,
            as in ECAPA-TDNN) or ``"flatten"`` (concatenate all frames; needs ``num_frames``, as in the paper).
        attention_pooling_hidden (`int`, defaults to 64):
            Hidden units of the frame-scoring MLP of ``pooling="attentive_stats"``.
        num_frames (`int`, *optional*):
            Fixed frame count for ``pooling="flatten"``; ignored otherwise.
        classifier_hidden_size (`int`, defaults to 64):
            Units of the hidden dense layer of the classifier.
        classifier_batch_norm (`bool`, defaults to `True`):
            Batch norm after the hidden dense layer (the paper's ``Dense(64) → BN``).
        classifier_dropout (`float`, defaults to 0.3):
            Dropout before the output layer.
        class_weights (`list[float]`, *optional*):
            Per-class weights of the cross-entropy loss (length ``num_labels``), e.g. inverse frequencies.
        label_smoothing (`float`, defaults to 0.0):
            Label smoothing of the cross-entropy loss.
        ensemble_size (`int`, defaults to 1):
            Independent networks (each a conv body and a head, initialised differently) whose class
            probabilities are averaged; each is trained on its own loss, so this is a seed ensemble in one model.
        temperature (`float`, defaults to 1.0):
            Softmax temperature of the scores (temperature scaling, fitted on validation speakers when a model is
            trained with them): the pipeline's scores are ``softmax(logits / temperature)``; 1.0 = uncalibrated.
            Never changes the top label.
        uncertain_below (`float`, *optional*):
            Calibrated top score below which hf-ser's front-ends (CLI, batch rows, timeline, Space) answer
            "uncertain" (scores kept); None = hf-ser's documented default (``hf_ser.confidence.ConfidenceRule``).
        trained_band_limited (`bool`, defaults to `False`):
            The training clips included telephone-band copies (a ``TelephoneBand`` augmentation step), so
            band-limited input is within what the model was trained for: hf-ser's "uncertain" rule then does not
            answer "uncertain" for a clip only because it has no energy above 4 kHz (clipping and a low top score
            still count).
        initializer_range (`float`, defaults to 0.02):
            Standard deviation of the normal init of the dense layers (convs use Kaiming init).
    """

    model_type = "ser"

    num_mfcc: int = 40
    input_batch_norm: bool = False
    conv_channels: list[int] | tuple[int, ...] = (64, 128, 128)
    conv_kernel_sizes: list[int] | tuple[int, ...] = (5, 5, 5)
    conv_dilations: list[int] | tuple[int, ...] = (1, 2, 3)
    conv_pool_sizes: list[int] | tuple[int, ...] = (2, 2, 1)
    conv_activation: str = "relu"
    residual: bool = False
    use_batch_norm: bool = True
    conv_dropout: float = 0.2
    use_channel_attention: bool = True
    channel_attention_reduction: int = 16
    use_spatial_attention: bool = True
    spatial_attention_kernel_size: int = 7
    pooling: str = "stats"
    num_frames: int | None = None
    attention_pooling_hidden: int = 64
    classifier_hidden_size: int = 64
    classifier_batch_norm: bool = True
    classifier_dropout: float = 0.3
    class_weights: list[float] | None = None
    label_smoothing: float = 0.0
    ensemble_size: int = 1
    initializer_range: float = 0.02
    temperature: float = 1.0
    uncertain_below: float | None = None
    trained_band_limited: bool = False

    def validate_architecture(self):
        """Part of `@strict`-powered validation: rejects inconsistent settings with the field named."""
        validate_calibration(self)
        n = len(self.conv_channels)
        lengths = {k: len(getattr(self, k)) for k in ("conv_kernel_sizes", "conv_dilations", "conv_pool_sizes")}
        if any(v != n for v in lengths.values()):
            raise ValueError(f"conv_channels has {n} entries; these must have as many: {lengths}")
        if any(p < 1 for p in self.conv_pool_sizes):
            raise ValueError(f"conv_pool_sizes must be >= 1, got {self.conv_pool_sizes}")
        if any(k % 2 == 0 for k in (*self.conv_kernel_sizes, self.spatial_attention_kernel_size)):
            raise ValueError("conv_kernel_sizes and spatial_attention_kernel_size must be odd ('same' padding)")
        if self.conv_activation not in ("relu", "gelu"):
            raise ValueError(f"conv_activation must be 'relu' or 'gelu', got {self.conv_activation!r}")
        if self.pooling not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {POOLING_MODES}, got {self.pooling!r}")
        if self.pooling == "flatten" and not self.num_frames:
            raise ValueError("pooling='flatten' needs num_frames (the fixed frame count of every input)")
        if self.ensemble_size < 1:
            raise ValueError(f"ensemble_size must be >= 1, got {self.ensemble_size}")
        if self.class_weights is not None and len(self.class_weights) != self.num_labels:
            raise ValueError(
                f"class_weights has {len(self.class_weights)} entries but the model has {self.num_labels} labels"
            )

    @classmethod
    def paper_preset(cls, num_mfcc: int = 20, num_frames: int = 108, **kwargs) -> SERConfig:
        """The paper's network: Conv1D(256,7)→BN→Conv1D(256,7)→BN→Dropout(0.2)→CBAM→Flatten→Dense(64)→BN.

        The defaults match its features: 20 MFCC, 2.5 s at 22.05 kHz with hop 512 → 108 frames.
        """
        values = dict(
            num_mfcc=num_mfcc,
            conv_channels=[256, 256],
            conv_kernel_sizes=[7, 7],
            conv_dilations=[1, 1],
            conv_pool_sizes=[1, 1],
            conv_dropout=0.2,
            channel_attention_reduction=16,
            pooling="flatten",
            num_frames=num_frames,
            classifier_hidden_size=64,
            classifier_dropout=0.0,
        )
        values.update(kwargs)
        return cls(**values)


__all__ = ["SERConfig"]
