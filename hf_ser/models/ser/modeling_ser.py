"""Attention 1D-CNN for speech emotion recognition (self-contained "remote code" file).

Architecture after Lee & Nadeem (arXiv 2507.03251): conv blocks over MFCC frames, CBAM channel
attention, CBAM spatial attention (over time), pooling, a small dense classifier.

Every module is padding-aware: hidden states are zeroed at padded frames after each step (so a
"same" convolution sees exactly the zeros it would see at the end of the clip alone) and all
statistics over time are masked. A clip padded inside a batch therefore gives the same logits as
the clip alone, which is what makes batched pipeline calls equal to single calls.
"""

from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithPooling, SequenceClassifierOutput

from .configuration_ser import SERConfig, drop_calibration


def _masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over time of (B, C, T) hidden states counting only frames where mask (B, 1, T) is 1."""
    return (hidden * mask).sum(dim=-1) / mask.sum(dim=-1).clamp(min=1.0)


def _masked_max(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return hidden.masked_fill(mask == 0, torch.finfo(hidden.dtype).min).amax(dim=-1)


class SERConvBlock(nn.Module):
    """Conv1d ('same' padding) → optional BatchNorm → activation → optional temporal max-pool, re-masked."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, dilation: int, pool: int, config: SERConfig
    ):
        super().__init__()
        self.conv = nn.Conv1d(
            in_channels, out_channels, kernel_size, dilation=dilation, padding=dilation * (kernel_size - 1) // 2
        )
        self.norm = nn.BatchNorm1d(out_channels) if config.use_batch_norm else nn.Identity()
        self.activation = nn.GELU() if config.conv_activation == "gelu" else nn.ReLU()
        self.pool = pool
        self.skip = None
        if config.residual:
            self.skip = nn.Identity() if in_channels == out_channels else nn.Conv1d(in_channels, out_channels, 1)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.norm(self.conv(hidden))
        if self.skip is not None:
            out = out + self.skip(hidden)
        hidden = self.activation(out) * mask
        if self.pool == 1:
            return hidden, mask
        # Windows are aligned at the start, so a clip's windows are the same alone or padded; padded frames
        # are excluded from each max (-inf), and windows made only of padding become padding again.
        hidden = hidden.masked_fill(mask == 0, float("-inf"))
        hidden = nn.functional.max_pool1d(hidden, self.pool, ceil_mode=True)
        mask = nn.functional.max_pool1d(mask, self.pool, ceil_mode=True)
        return hidden.masked_fill(mask == 0, 0.0), mask


class SERChannelAttention(nn.Module):
    """CBAM channel attention: sigmoid(MLP(mean_t x) + MLP(max_t x)) scales each channel."""

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels))

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = self.mlp(_masked_mean(hidden, mask)) + self.mlp(_masked_max(hidden, mask))
        return hidden * torch.sigmoid(scores).unsqueeze(-1)


class SERSpatialAttention(nn.Module):
    """CBAM spatial attention over time: sigmoid(conv([mean_c x; max_c x])) scales each frame."""

    def __init__(self, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv1d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # Padded frames are all-zero, so their mean and max are 0: the same zeros the conv pads with.
        summary = torch.cat([hidden.mean(dim=1, keepdim=True), hidden.amax(dim=1, keepdim=True)], dim=1)
        return hidden * torch.sigmoid(self.conv(summary)) * mask


class SERPooling(nn.Module):
    """Turns (B, C, T) into (B, D): masked mean, masked mean+std, or flatten of a fixed frame count."""

    def __init__(self, config: SERConfig, channels: int):
        super().__init__()
        self.mode = config.pooling
        self.num_frames = config.num_frames
        self.scorer = None
        if self.mode == "attentive_stats":
            hidden = config.attention_pooling_hidden
            self.scorer = nn.Sequential(nn.Conv1d(channels, hidden, 1), nn.Tanh(), nn.Conv1d(hidden, 1, 1))

    def output_size(self, channels: int) -> int:
        sizes = {"mean": channels, "stats": 2 * channels, "attentive_stats": 2 * channels}
        return sizes.get(self.mode, channels * (self.num_frames or 0))

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.mode == "flatten":
            if hidden.shape[-1] != self.num_frames:
                raise ValueError(
                    f"pooling='flatten' needs exactly num_frames={self.num_frames} frames, got {hidden.shape[-1]}; "
                    "set the feature extractor's max_duration so every clip has the same length"
                )
            return hidden.flatten(1)
        if self.scorer is not None:  # softmax over valid frames, weighted mean and standard deviation
            scores = self.scorer(hidden).masked_fill(mask == 0, float("-inf"))
            weights = torch.softmax(scores, dim=-1)
            mean = (hidden * weights).sum(dim=-1)
            var = ((hidden - mean.unsqueeze(-1)).square() * weights).sum(dim=-1)
            return torch.cat([mean, torch.sqrt(var + 1e-5)], dim=-1)
        mean = _masked_mean(hidden, mask)
        if self.mode == "mean":
            return mean
        var = _masked_mean((hidden - mean.unsqueeze(-1)).square(), mask)
        return torch.cat([mean, torch.sqrt(var + 1e-5)], dim=-1)


class SERClassificationHead(nn.Module):
    """Dense(hidden, ReLU) → optional BatchNorm → Dropout → Dense(num_labels)."""

    def __init__(self, in_features: int, config: SERConfig):
        super().__init__()
        self.dense = nn.Linear(in_features, config.classifier_hidden_size)
        self.activation = nn.ReLU()
        self.norm = nn.BatchNorm1d(config.classifier_hidden_size) if config.classifier_batch_norm else nn.Identity()
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.out_proj = nn.Linear(config.classifier_hidden_size, config.num_labels)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.out_proj(self.dropout(self.norm(self.activation(self.dense(pooled)))))


def save_with_pipeline(model, save, auto_classes: dict[str, str], save_directory, *args, **kwargs):
    """``save_pretrained`` that also writes ``auto_classes`` into ``auto_map`` (every Auto class loads the folder
    as remote code) and ships the decoding pipeline (``pipeline_ser.py``, ``audio_ser.py``,
    ``config.custom_pipelines``), so ``pipeline(model=folder, trust_remote_code=True)`` decodes files without
    hf-ser. ``save`` is the parent class's bound ``save_pretrained``."""
    here = Path(__file__).resolve().parent
    pipeline_files = [here / "pipeline_ser.py", here / "audio_ser.py"]
    ship_pipeline = model._auto_class is not None and all(f.is_file() for f in pipeline_files)
    if model._auto_class is not None:
        module = model.__class__.__module__.split(".")[-1]
        model.config.auto_map = {
            **(getattr(model.config, "auto_map", None) or {}),
            **{auto: f"{module}.{name}" for auto, name in auto_classes.items()},
        }
    if ship_pipeline:
        model.config.custom_pipelines = {
            "audio-classification": {
                "impl": "pipeline_ser.SERAudioClassificationPipeline",
                "pt": ["AutoModelForAudioClassification"],
                "tf": [],
                "type": "audio",
            }
        }
    result = save(save_directory, *args, **kwargs)
    if ship_pipeline:
        for source in pipeline_files:
            shutil.copyfile(source, Path(save_directory) / source.name)
    return result


logger = logging.getLogger(__name__)


def loaded_with_fresh_head(from_pretrained, *args, **kwargs):
    """``from_pretrained`` (a bound ``PreTrainedModel.from_pretrained``) for either family; where the classifier's
    output layer was re-initialised for another label set (``num_labels=..., ignore_mismatched_sizes=True``, how
    transformers re-heads a model), the temperature and "uncertain" threshold fitted to the old head are dropped:
    ser-general's 2.07 had stayed and flattened the new head's scores."""
    wanted = kwargs.pop("output_loading_info", False)
    model, info = from_pretrained(*args, output_loading_info=True, **kwargs)
    fresh = any("out_proj" in entry[0] for entry in info.get("mismatched_keys", ()))
    if fresh and (dropped := drop_calibration(model.config)):
        logger.warning(
            "the classifier's output layer was re-initialised for %d labels: its calibration (temperature %.2f) "
            "belonged to the old head and is dropped (temperature 1.0; refit it on validation speakers)",
            model.config.num_labels,
            dropped[0],
        )
    return (model, info) if wanted else model


class SERPreTrainedModel(PreTrainedModel):
    config_class = SERConfig
    base_model_prefix = "ser"
    main_input_name = "input_features"

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Conv1d):
            init.kaiming_normal_(module.weight, nonlinearity="relu")
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=self.config.initializer_range)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm1d):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            if module.running_mean is not None:
                init.zeros_(module.running_mean)
                init.ones_(module.running_var)

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        """``PreTrainedModel.from_pretrained``; a re-headed model drops the old head's calibration
        (:func:`loaded_with_fresh_head`)."""
        return loaded_with_fresh_head(super().from_pretrained, *args, **kwargs)

    def save_pretrained(self, save_directory, *args, **kwargs):
        """Also writes ``AutoModel`` into ``auto_map`` and ships the decoding pipeline (:func:`save_with_pipeline`)."""
        extra = {"AutoModel": "SERModel", "AutoModelForAudioClassification": "SERForAudioClassification"}
        return save_with_pipeline(self, super().save_pretrained, extra, save_directory, *args, **kwargs)

    def _return_dict(self, return_dict: bool | None) -> bool:
        return self.config.return_dict if return_dict is None else return_dict

    @staticmethod
    def _frame_mask(input_features: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        if attention_mask is None:
            return input_features.new_ones(input_features.shape[0], 1, input_features.shape[1])
        if attention_mask.shape != input_features.shape[:2]:
            raise ValueError(
                f"attention_mask has shape {tuple(attention_mask.shape)}, expected (batch, frames) = "
                f"{tuple(input_features.shape[:2])}"
            )
        return attention_mask.to(input_features.dtype).unsqueeze(1)


class SERModel(SERPreTrainedModel):
    """Conv blocks + attention; returns frame-level hidden states and the pooled utterance vector."""

    def __init__(self, config: SERConfig):
        super().__init__(config)
        channels = [config.num_mfcc, *config.conv_channels]
        self.input_norm = nn.BatchNorm1d(config.num_mfcc) if config.input_batch_norm else None
        self.conv_blocks = nn.ModuleList(
            SERConvBlock(channels[i], channels[i + 1], k, d, p, config)
            for i, (k, d, p) in enumerate(zip(config.conv_kernel_sizes, config.conv_dilations, config.conv_pool_sizes))
        )
        self.dropout = nn.Dropout(config.conv_dropout)
        self.channel_attention = (
            SERChannelAttention(channels[-1], config.channel_attention_reduction)
            if config.use_channel_attention
            else None
        )
        self.spatial_attention = (
            SERSpatialAttention(config.spatial_attention_kernel_size) if config.use_spatial_attention else None
        )
        self.pooling = SERPooling(config, channels[-1])
        self.output_size = self.pooling.output_size(channels[-1])
        self.post_init()

    def forward(
        self,
        input_features: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPooling | tuple:
        if input_features.ndim != 3 or input_features.shape[-1] != self.config.num_mfcc:
            raise ValueError(
                f"input_features must be (batch, frames, {self.config.num_mfcc}), got {tuple(input_features.shape)}"
            )
        mask = self._frame_mask(input_features, attention_mask)
        hidden = input_features.transpose(1, 2) * mask  # (B, C, T)
        if self.input_norm is not None:
            hidden = self.input_norm(hidden) * mask
        all_hidden = []
        for block in self.conv_blocks:
            hidden, mask = block(hidden, mask)
            all_hidden.append(hidden.transpose(1, 2))
        hidden = self.dropout(hidden)
        if self.channel_attention is not None:
            hidden = self.channel_attention(hidden, mask)
        if self.spatial_attention is not None:
            hidden = self.spatial_attention(hidden, mask)
        pooled = self.pooling(hidden, mask)
        output = BaseModelOutputWithPooling(
            last_hidden_state=hidden.transpose(1, 2),
            pooler_output=pooled,
            hidden_states=tuple(all_hidden) if output_hidden_states else None,
        )
        return output if self._return_dict(return_dict) else output.to_tuple()


class SEREnsembleMember(nn.Module):
    """One more network of an ensemble (``config.ensemble_size``): a body and a head of its own."""

    def __init__(self, config: SERConfig):
        super().__init__()
        self.ser = SERModel(config)
        self.classifier = SERClassificationHead(self.ser.output_size, config)

    def forward(self, input_features: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        pooled = self.ser(input_features, attention_mask=attention_mask, return_dict=True).pooler_output
        return self.classifier(pooled)


class SERForAudioClassification(SERPreTrainedModel):
    """SERModel with the dense classification head; cross-entropy loss when ``labels`` are given.

    With ``config.ensemble_size > 1`` the logits are the log of the members' mean class probabilities (so
    their softmax is that mean), and the loss is the mean of the members' own losses: members learn
    independently, as separately seeded models would. ``hidden_states`` are the first member's.
    """

    def __init__(self, config: SERConfig):
        super().__init__(config)
        self.ser = SERModel(config)
        self.classifier = SERClassificationHead(self.ser.output_size, config)
        self.members = nn.ModuleList(SEREnsembleMember(config) for _ in range(config.ensemble_size - 1))
        weights = torch.tensor(config.class_weights, dtype=torch.float32) if config.class_weights else None
        self.register_buffer("class_weights", weights, persistent=False)
        self.post_init()

    def heads(self) -> list[SERClassificationHead]:
        """Every classification head (one per ensemble member), e.g. to give them new labels together."""
        return [self.classifier] + [member.classifier for member in self.members]

    def forward(
        self,
        input_features: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput | tuple:
        outputs = self.ser(
            input_features, attention_mask=attention_mask, output_hidden_states=output_hidden_states, return_dict=True
        )
        member_logits = [self.classifier(outputs.pooler_output)]
        member_logits += [member(input_features, attention_mask) for member in self.members]
        loss = None
        if labels is not None:
            targets = _targets(labels.to(member_logits[0].device))
            losses = [
                nn.functional.cross_entropy(
                    m.float(), targets, weight=self.class_weights, label_smoothing=self.config.label_smoothing
                )
                for m in member_logits
            ]
            loss = torch.stack(losses).mean()
        if len(member_logits) == 1:
            logits = member_logits[0]
        else:  # log of the mean probability
            log_probs = torch.stack([m.log_softmax(dim=-1) for m in member_logits])
            logits = torch.logsumexp(log_probs, dim=0) - math.log(len(member_logits))
        output = SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)
        return output if self._return_dict(return_dict) else output.to_tuple()


def _targets(labels: torch.Tensor) -> torch.Tensor:
    """Class ids, or (batch, num_labels) class probabilities as mixup makes them; both suit ``cross_entropy``."""
    return labels.float() if labels.is_floating_point() and labels.dim() == 2 else labels.long()


__all__ = ["SERPreTrainedModel", "SERModel", "SERForAudioClassification", "save_with_pipeline"]
