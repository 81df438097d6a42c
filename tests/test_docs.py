"""The README documents every site setting with its real default and range."""

from conftest import ROOT

from srs.config import ENV_VARS
from srs.sites.models import TIMER_SETTINGS


def test_readme_lists_every_timer_with_default_and_range():
    readme = (ROOT / "README.md").read_text()
    for s in TIMER_SETTINGS:
        assert f"| `{s.name}` | {s.default} | {s.minimum}-{s.maximum} |" in readme, s.name


def test_readme_lists_every_environment_variable():
    readme = (ROOT / "README.md").read_text()
    for name in ENV_VARS:
        assert f"| `{name}` |" in readme, name
