"""Checks bid responses against an OpenRTB JSON Schema (draft-04) with the
`jsonschema` package: a validator independent of ours, run by
tests/conformance.rs.

Usage: response_schema_check.py SCHEMA FILE...

Prints one line per file, `FILE: ok` or `FILE: invalid: REASON`.
"""

import json
import sys

import jsonschema


def main():
    schema_path, *files = sys.argv[1:]
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    validator = jsonschema.Draft4Validator(schema)
    for path in files:
        with open(path, encoding="utf-8") as f:
            answer = json.load(f)
        errors = sorted(validator.iter_errors(answer), key=lambda e: list(e.path))
        if errors:
            e = errors[0]
            where = "/".join(str(p) for p in e.path)
            print(f"{path}: invalid: {where}: {e.message}")
        else:
            print(f"{path}: ok")


if __name__ == "__main__":
    main()
