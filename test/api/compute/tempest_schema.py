#!/usr/bin/env python3
"""Validates response bodies against Tempest's own compute response schemas.

Reads a JSON list of {"module": "v2_1.servers", "name": "get_server",
"status": 200, "body": {...}} on stdin (module relative to
tempest.lib.api_schema.response.<package>, package "compute" unless the
entry names another, e.g. "volume") and prints a JSON list of error
strings, one per failing entry (empty when every body validates). Exits 3
when Tempest is not installed, so callers can skip.
"""
import importlib
import json
import sys

try:
    import jsonschema
    from tempest.lib.common import jsonschema_validator as jv
except ImportError:
    sys.exit(3)

errors = []
for i, item in enumerate(json.load(sys.stdin)):
    label = "%s.%s [%d] %s" % (item["module"], item["name"], i, item.get("label", ""))
    try:
        mod = importlib.import_module(
            "tempest.lib.api_schema.response.%s.%s" % (item.get("package", "compute"), item["module"]))
        schema = getattr(mod, item["name"])
    except (ImportError, AttributeError) as e:
        errors.append("%s: no such schema (%s)" % (label, e))
        continue
    if "status" in item and item["status"] not in schema["status_code"]:
        errors.append("%s: status %s not in %s" % (label, item["status"], schema["status_code"]))
        continue
    body_schema = schema.get("response_body")
    if not body_schema:
        if item.get("body"):
            errors.append("%s: a body where none is expected" % label)
        continue
    try:
        jsonschema.validate(item["body"], body_schema, cls=jv.JSONSCHEMA_VALIDATOR,
                            format_checker=jv.FORMAT_CHECKER)
    except jsonschema.ValidationError as e:
        errors.append("%s: %s at %s" % (label, e.message, list(e.absolute_path)))
print(json.dumps(errors))
