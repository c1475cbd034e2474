"""Training and evaluation: typed config, protocol registry, ``fit`` on Trainer, typed results, runner.

Import the pieces from their modules (``hf_ser.training.run``, ``.config``, ``.protocols``, ``.results``);
this package file stays empty of imports so that ``hf_ser.training.results`` loads without Trainer.
"""
