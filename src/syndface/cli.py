"""`syndface <command> ...`: one sub-command per workflow step.

Each command lives in its stage's module as `main(argv)`; modules are imported only when
their command runs, so `syndface --help` stays fast and a CPU-only stage never imports torch.
"""

from __future__ import annotations

import importlib
import sys

# command -> (module, one-line help). Rule names in workflow/rules/*.smk are these, snake_cased.
COMMANDS: dict[str, tuple[str, str]] = {
    "build-manifest": ("syndface.cohort.build", "import cohort/auxiliary tables into one validated manifest"),
    "make-folds": ("syndface.folds", "subject-grouped, stratified k-fold split of the train images"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: syndface <command> [options]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {text}" for name, (_, text) in sorted(COMMANDS.items())]
    lines += ["", "Run `syndface <command> --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    if argv[0] == "--version":
        from syndface import __version__

        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"syndface: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    result = module.main(rest, prog=f"syndface {name}")
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
