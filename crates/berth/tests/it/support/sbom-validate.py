"""Validate an SBOM with its format's own project library: spdx-tools for
SPDX 2.3, cyclonedx-python-lib's strict JSON schema for CycloneDX 1.5.
Usage: sbom-validate.py spdx|cyclonedx FILE. Exit 0 when valid; otherwise
prints what is wrong and exits 1."""

import sys


def main() -> int:
    kind, path = sys.argv[1], sys.argv[2]
    if kind == "spdx":
        from spdx_tools.spdx.parser.parse_anything import parse_file
        from spdx_tools.spdx.validation.document_validator import (
            validate_full_spdx_document,
        )

        doc = parse_file(path)
        messages = validate_full_spdx_document(doc, "SPDX-2.3")
        for m in messages:
            print(m.validation_message)
        return 1 if messages else 0
    if kind == "cyclonedx":
        from cyclonedx.schema import SchemaVersion
        from cyclonedx.validation.json import JsonStrictValidator

        with open(path, encoding="utf-8") as f:
            error = JsonStrictValidator(SchemaVersion.V1_5).validate_str(f.read())
        if error is not None:
            print(error)
            return 1
        return 0
    print(f"unknown kind {kind}")
    return 2


sys.exit(main())
