"""The built-in dlapps plugins, installed as the package ``dlapps_plugins``.

Each subpackage is one plugin, registered under the ``dlapps`` entry-point group
in pyproject.toml exactly as a third-party plugin would be.
"""
