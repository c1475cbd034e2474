"""Stochastic weight averaging (Izmailov et al. 2018) as a ``Trainer`` callback.

The weights the model ends training with are the equal-weight mean of its weights after every optimiser step
from a fraction of training on: a flatter minimum than the last step's, which generalises better to conditions
training never saw (SWAD, Cha et al. 2021, averages densely like this for domain generalisation). Batch-norm
statistics are averaged with the weights (``use_buffers``), so no extra pass over the data is needed.
The averaging itself is torch's ``AveragedModel``; this callback only decides when to update and when to copy back.
"""

from __future__ import annotations

from torch.optim.swa_utils import AveragedModel, get_swa_avg_fn
from transformers import TrainerCallback


class WeightAveraging(TrainerCallback):
    """Average the model's weights over every step from ``start`` (a fraction of the run's steps, in [0, 1)) and
    load the average into the model when training ends."""

    def __init__(self, start: float):
        if not 0.0 <= start < 1.0:
            raise ValueError(f"training.average_weights_from must be in [0, 1), got {start}")
        self.start = start
        self.average: AveragedModel | None = None

    def first_step(self, max_steps: int) -> int:
        """The first optimiser step (1-based, as ``state.global_step`` counts) whose weights join the average."""
        return max(1, int(self.start * max_steps) + 1)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if model is None or state.global_step < self.first_step(state.max_steps):
            return
        if self.average is None:
            # avg_fn named: without it torch averages a CUDA model with its foreach kernels, which refuse the
            # integer buffers use_buffers brings in (batch norm's num_batches_tracked: "Integer division with
            # addcdiv is no longer supported"); named, every device takes the per-tensor path the CPU takes
            self.average = AveragedModel(model, avg_fn=get_swa_avg_fn(), use_buffers=True)
        self.average.update_parameters(model)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if model is None or self.average is None:
            return
        model.load_state_dict(self.average.module.state_dict())
        self.average = None  # free the copy; the model now holds the average
