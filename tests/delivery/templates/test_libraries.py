"""The template libraries are the ones the project is built on, not namesakes."""

from importlib import metadata

import mjml


def test_mjml_is_mjml_python_the_mrml_binding():
    # The PyPI package "mjml" installs a module of the same name; ours is "mjml-python".
    assert metadata.version("mjml-python")
    distributions = metadata.packages_distributions().get("mjml", [])
    assert distributions == ["mjml-python"], distributions
    html = mjml.mjml2html("<mjml><mj-body><mj-text>Hi</mj-text></mj-body></mjml>")
    assert "<!doctype html>" in html.lower()


def test_python_liquid_is_version_2():
    assert metadata.version("python-liquid").startswith("2.")
