"""The record-file template ``soc-kb template`` prints, in YAML, JSON, CSV or JSON Schema."""

from __future__ import annotations

import csv
import io
import json
from importlib.resources import files

import yaml

from .records import MODELS
from .schema import COLUMNS


def template_text(fmt: str = "yaml") -> str:
    """The commented YAML template, or the same records as JSON, a studies CSV, or JSON Schema."""
    text = (files("kb") / "template.yaml").read_text(encoding="utf-8")
    if fmt == "yaml":
        return text
    if fmt == "json":
        return json.dumps(yaml.safe_load(text), ensure_ascii=False, indent=1) + "\n"
    if fmt == "csv":
        return _studies_csv(yaml.safe_load(text)["studies"])
    if fmt == "schema":
        schemas = {table: model.model_json_schema() for table, model in MODELS.items()}
        return json.dumps(schemas, ensure_ascii=False, indent=1) + "\n"
    raise ValueError(f"unknown template format '{fmt}'; use yaml, json, csv or schema")


def _studies_csv(studies: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*COLUMNS["studies"], "mechanisms"], extrasaction="ignore")
    writer.writeheader()
    for study in studies:
        writer.writerow(study | {"mechanisms": ";".join(study.get("mechanisms", []))})
    return out.getvalue()
