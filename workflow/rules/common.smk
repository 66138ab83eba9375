# Helpers shared by the workflow: config validation, input functions (get_*), constants.
import json
import os

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from syndface import config as syndface_config
from syndface.taxonomy import AFFECTED, AGE_GROUPS, DISEASES, FAKE_TYPES, VARIANTS

CONFIG_SCHEMA = workflow.source_path("../schemas/config.schema.yaml")
MANIFEST_SCHEMA = os.path.join(workflow.basedir, "workflow", "schemas", "manifest.schema.yaml")

# Fail before any job with every problem spelled out (key, bad value, what is allowed);
# then let Snakemake's own validation have its say too.
try:
    syndface_config.check(config, CONFIG_SCHEMA)
except syndface_config.ConfigError as error:
    raise WorkflowError(str(error))
validate(config, schema="../schemas/config.schema.yaml")

SEED = config["seed"]


DEMO_COHORT = "results/demo/cohort.tsv"


def is_demo():
    """The demo cohort is in use: ground-truth checks run and the clinicians' survey is simulated."""
    return any(spec["format"] == "demo" for spec in config["cohort"]["inputs"])


def get_cohort_specs():
    """cohort.inputs with the demo entry resolved to the generated table."""
    return [
        {**spec, "format": "syndface", "path": DEMO_COHORT} if spec["format"] == "demo" else spec
        for spec in config["cohort"]["inputs"]
    ]


def get_cohort_tables():
    return [spec["path"] for spec in get_cohort_specs()]


def get_final_outputs():
    return [
        "results/cohort/manifest.tsv",
        "results/folds/folds.tsv",
    ]
