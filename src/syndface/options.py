"""One path for every setting: config file -> schema -> the options of the command that reads it.

A stage command takes its inputs and outputs as path flags and its settings as one value,
`--options JSON`: exactly the config keys it reads, nested as in the config, e.g.
`{"classifier": {"bootstrap": 1000}, "seed": 1}`. Each command declares the keys it reads once,
as the fields of a frozen dataclass built on `Options`:

    @dataclass(frozen=True)
    class EvaluateOptions(Options):
        bootstrap: int = setting("classifier.bootstrap")
        seed: int = setting("seed")

Types, allowed values, defaults and one-line meanings live in the config schema
(`schemas/config.schema.yaml`, shipped with the package); `Options.parse` checks the value
against it, so a command run by hand gets the same checks as one run by the workflow, and an
unknown key is an error. The workflow builds each rule's `params` with `Options.project(config)`,
the same function for every rule: a rule's params are exactly what its command reads, so a
changed key reruns exactly the jobs whose commands read it.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import jsonschema
import yaml

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
CONFIG_SCHEMA = SCHEMA_DIR / "config.schema.yaml"


class OptionsError(ValueError):
    """A command's options value is malformed, names an unknown key or breaks the schema."""


@functools.cache
def config_schema() -> dict[str, Any]:
    with open(CONFIG_SCHEMA) as fh:
        return yaml.safe_load(fh)


def schema_of(path: str) -> dict[str, Any]:
    """The schema of one config key (dotted path), with `$ref`s to `$defs` resolved."""
    root = config_schema()
    node: dict[str, Any] = root
    for part in path.split("."):
        properties = node.get("properties", {})
        if part not in properties:
            raise KeyError(f"{path!r} is not a key of the config schema")
        node = properties[part]
        while "$ref" in node:  # the referenced definition, with this node's own keywords on top
            ref = node["$ref"]
            node = {**root["$defs"][ref.rsplit("/", 1)[-1]], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def setting(path: str) -> Any:
    """A dataclass field read from config key `path` (dotted, e.g. `classifier.lr`); its default
    is the schema's."""
    schema = schema_of(path)
    metadata = {"config": path}
    if "default" not in schema:
        return dataclasses.field(metadata=metadata)
    default = schema["default"]
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def lookup(config: Mapping[str, Any], path: str) -> Any:
    node: Any = config
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(path)
        node = node[part]
    return node


def _assign(tree: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[leaf] = value


def _default(path: str) -> Any:
    schema = schema_of(path)
    if "default" not in schema:
        raise OptionsError(f"option {path!r} is missing and has no default in the config schema")
    return schema["default"]


@dataclasses.dataclass(frozen=True)
class Options:
    """Base of a command's options: subclasses declare fields with `setting(path)`."""

    @classmethod
    def paths(cls) -> dict[str, str]:
        """Field name -> config key, in declaration order (fields a subclass adds without
        `setting`, e.g. a job's paths, are not options)."""
        return {f.name: f.metadata["config"] for f in dataclasses.fields(cls) if "config" in f.metadata}

    @classmethod
    def project(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        """The part of a full config this command reads (missing keys take the schema default)."""
        out: dict[str, Any] = {}
        for path in cls.paths().values():
            try:
                value = lookup(config, path)
            except KeyError:
                value = _default(path)
            _assign(out, path, value)
        return out

    @classmethod
    def parse(cls, value: str | Mapping[str, Any]) -> Self:
        """Options from a JSON/YAML text (or a mapping) shaped like `project`'s result.

        Every key must be one this command reads; absent keys take the schema default; every
        value is checked against the schema, and the error names the key.
        """
        if isinstance(value, str):
            try:
                value = yaml.safe_load(value) if value.strip() else {}
            except yaml.YAMLError as error:
                raise OptionsError(f"--options is not JSON/YAML: {error}") from None
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise OptionsError(f"--options must be a mapping of config keys, got {type(value).__name__}")
        wanted = cls.paths()
        by_path = {path: name for name, path in wanted.items()}
        given: dict[str, Any] = {}

        def walk(node: Mapping[str, Any], prefix: str) -> None:
            for key, item in node.items():
                path = f"{prefix}{key}"
                if path in by_path:
                    given[path] = item
                elif isinstance(item, Mapping) and any(p.startswith(path + ".") for p in by_path):
                    walk(item, path + ".")
                else:
                    allowed = ", ".join(sorted(by_path))
                    raise OptionsError(f"{cls.__name__}: unknown option {path!r}; this command reads: {allowed}")

        walk(value, "")
        kwargs: dict[str, Any] = {}
        for path, name in by_path.items():
            item = given[path] if path in given else _default(path)
            try:
                # nested `$ref`s (e.g. list items) resolve against the whole schema's `$defs`
                fragment = {**schema_of(path), "$defs": config_schema().get("$defs", {})}
                jsonschema.Draft202012Validator(fragment).validate(item)
            except jsonschema.ValidationError as error:
                raise OptionsError(f"option {path}: {error.message}") from None
            kwargs[name] = item
        return cls(**kwargs)

    def options(self) -> dict[str, Any]:
        """Field name -> value of the options only."""
        return {name: getattr(self, name) for name in self.paths()}

    def as_config(self) -> dict[str, Any]:
        """The options nested as in the config (what `project` returns)."""
        out: dict[str, Any] = {}
        for name, path in self.paths().items():
            _assign(out, path, getattr(self, name))
        return out

    def to_json(self) -> str:
        return json.dumps(self.as_config(), sort_keys=True)


def options_json(options_class: type[Options], config: Mapping[str, Any]) -> str:
    """The `--options` value the workflow passes: canonical JSON of the projected config."""
    return json.dumps(options_class.project(config), sort_keys=True)


def add_options_argument(parser: Any, options_class: type[Options]) -> None:
    """`--options JSON` on a command's parser, its help listing the keys the command reads."""
    import argparse

    def parse(text: str) -> Options:
        try:
            return options_class.parse(text)
        except OptionsError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    keys = ", ".join(options_class.paths().values())
    parser.add_argument(
        "--options",
        default="{}",
        type=parse,
        help=f"settings as JSON/YAML nested as in config.yaml; reads: {keys} (missing keys take the schema default)",
    )
