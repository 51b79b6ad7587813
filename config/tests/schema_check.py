"""Checks YAML files against the config schema with the `jsonschema`
package: a validator independent of ours, run by tests/schema.rs.

Usage: schema_check.py SCHEMA FILE...

Prints one line per file, `FILE: ok` or `FILE: invalid: REASON`, and exits
2 when the schema itself is not valid draft-07.

YAML is read as YAML 1.2's core schema, as yaml-language-server and the
bidder read it: 2026-11-01 and 07:00 are text, and only true and false are
booleans (PyYAML's YAML 1.1 would make a date and a number of them).
"""

import json
import re
import sys

import jsonschema
import yaml


class Yaml12(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 core schema scalars."""

    yaml_implicit_resolvers = {}


for tag, pattern, first in [
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("int", r"^(?:[-+]?[0-9]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    (
        "float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        list("-+.0123456789"),
    ),
]:
    Yaml12.add_implicit_resolver("tag:yaml.org,2002:" + tag, re.compile(pattern), first)


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        schema = json.load(f)
    try:
        jsonschema.Draft7Validator.check_schema(schema)
    except jsonschema.SchemaError as e:
        print(f"the schema is not valid draft-07: {e.message}", file=sys.stderr)
        sys.exit(2)
    validator = jsonschema.Draft7Validator(schema)
    for path in sys.argv[2:]:
        with open(path, encoding="utf-8") as f:
            document = yaml.load(f, Loader=Yaml12)
        error = jsonschema.exceptions.best_match(validator.iter_errors(document))
        if error is None:
            print(f"{path}: ok")
        else:
            where = "/".join(str(p) for p in error.absolute_path)
            print(f"{path}: invalid: /{where}: {error.message}")


main()
