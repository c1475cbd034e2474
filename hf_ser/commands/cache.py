"""`hf-ser cache`: what the cache holds (`info`) and trimming it to a size, least recently used first (`prune`)."""

from __future__ import annotations

import argparse

from ._common import non_negative


def register(sub) -> None:
    cache = sub.add_parser(
        "cache", help="show or trim hf-ser's cache (encoder states, features, augmented audio, audio from datasets)"
    )
    cache.add_argument(
        "action",
        nargs="?",
        default="info",
        choices=["info", "prune"],
        help="info (the default): entries and GB per kind; prune: remove the least recently used down to --max-gb",
    )
    cache.add_argument("--max-gb", type=non_negative, default=None, help="prune: keep at most this many GB")
    cache.add_argument("--dry-run", action="store_true", help="prune: only say what would be removed")
    cache.add_argument("--cache-dir", default=None, help="default: $HF_SER_CACHE or ~/.cache/hf_ser")
    cache.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data.cache import cache_root
    from ..data.cache_usage import cache_usage, prune_cache

    if args.action == "prune" and args.max_gb is None:
        raise ValueError("prune needs --max-gb, a size in GB >= 0 (e.g. --max-gb 20)")
    if args.action == "info" and (args.max_gb is not None or args.dry_run):  # they were ignored
        raise ValueError("--max-gb and --dry-run are options of `hf-ser cache prune`; `info` only shows the cache")
    root = cache_root(args.cache_dir)
    if root.exists() and not root.is_dir():  # it was read as an empty cache
        raise ValueError(f"{root}: a file, not a cache folder (--cache-dir or $HF_SER_CACHE)")
    if not root.exists():
        print(f"{root}: no cache yet (nothing cached there)")
        return 0
    if args.action == "prune":
        report = prune_cache(int(args.max_gb * 1e9), args.cache_dir, dry_run=args.dry_run)
        verb = "would remove" if report.dry_run else "removed"
        print(
            f"{verb} {report.removed} entries ({report.freed / 1e9:.2f} GB), least recently used first; "
            f"{report.remaining / 1e9:.2f} GB left in {root}"
        )
        return 0
    usage = cache_usage(args.cache_dir)
    print(f"{root}")
    print(f"{'kind':<16}{'entries':>10}{'GB':>10}")
    for u in usage:
        print(f"{u.kind:<16}{u.entries:>10}{u.bytes / 1e9:>10.2f}")
    print(f"{'total':<16}{sum(u.entries for u in usage):>10}{sum(u.bytes for u in usage) / 1e9:>10.2f}")
    return 0
