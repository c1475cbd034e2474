"""One module per ``hf-ser`` command (transformers' ``commands/`` pattern): each has ``register(subparsers)``
and ``run(args) -> exit status``. :data:`COMMANDS` lists them in the order ``hf-ser --help`` shows them."""

COMMANDS = (
    "train",
    "evaluate",
    "predict",
    "card",
    "push",
    "demo",
    "results",
    "release",
    "finetune",
    "score",
    "export",
    "example",
    "cache",
)
