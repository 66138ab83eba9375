import pytest
import yaml
from conftest import REPO

from syndface import taxonomy


def test_schemas_use_the_taxonomy():
    manifest = yaml.safe_load((REPO / "workflow/schemas/manifest.schema.yaml").read_text())
    config = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    assert manifest["properties"]["disease"]["enum"] == list(taxonomy.DISEASES)
    assert manifest["properties"]["age_group"]["enum"] == list(taxonomy.AGE_GROUPS)
    assert manifest["properties"]["source"]["enum"] == list(taxonomy.SOURCES)
    assert manifest["properties"]["split"]["enum"] == list(taxonomy.SPLITS)
    assert config["$defs"]["disease"]["enum"] == list(taxonomy.DISEASES)
    assert config["$defs"]["variant"]["enum"] == list(taxonomy.VARIANTS)
    age_map = config["properties"]["cohort"]["properties"]["fairface_age_map"]
    assert age_map["additionalProperties"]["enum"] == [*taxonomy.AGE_GROUPS, "exclude"]


@pytest.mark.parametrize(
    "years, group",
    [
        (0, "infant"),
        (1.99, "infant"),
        (2, "child"),
        (9.9, "child"),
        (10, "adolescent"),
        (19.5, "adolescent"),
        (20, "young_adult"),
        (34.9, "young_adult"),
        (35, "older_adult"),
        (90, "older_adult"),
    ],
)
def test_age_brackets_follow_the_paper(years, group):
    assert taxonomy.age_group_of(years) == group


def test_bad_labels_name_the_allowed_ones():
    with pytest.raises(ValueError, match="allowed: WS, 22q, control, unaffected"):
        taxonomy.disease_index("22q11DS")
    with pytest.raises(ValueError):
        taxonomy.age_group_of(-1)
    assert taxonomy.variant_fake_type("real+blended_75") == "blended_75"
    assert taxonomy.variant_fake_type("real") is None
