"""The preflight's model, read where it is registered (``sitekit_preflight``) by the collection's
action plugins: Ansible's templating of the model's lists as arguments took 18 s at 10,000
sites, reading them in place takes nothing. The result holds the model as one JSON text
(:func:`sitekit.model.publish`), decoded once per process (:func:`sitekit.model.published`)."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible_collections.sitekit.deploy.plugins.plugin_utils.checkout import ensure_importable

ensure_importable()

from sitekit.model import published  # noqa: E402

#: The preflight's registered result, whose ``model`` holds the model's variables.
PREFLIGHT = "sitekit_preflight"


def alias(name):
    """The text the sitekit role's vars give a variable of the preflight's model."""
    return "{{ " + PREFLIGHT + ".model | sitekit.deploy.published('" + name + "') }}"


def registered(task_vars):
    """The variables of the model the preflight registered (none without it)."""
    result = task_vars.get(PREFLIGHT)
    return published(result.get("model")) if isinstance(result, dict) else {}


def from_model(name, task_vars, model):
    """Whether ``name`` is the model's variable as the sitekit role's vars name it (not given
    another value, e.g. with -e)."""
    return name in model and str(task_vars.get(name)) == alias(name)


def read_list(name, task_vars, option="sites_from"):
    """The model's list ``name``, read in place; the empty name reads as no entries. Fails,
    naming ``option``, when ``name`` is not one of the model's variables."""
    name = str(name)
    if not name:
        return []
    model = registered(task_vars)
    if not from_model(name, task_vars, model):
        raise AnsibleActionFail(f"{option}: {name} is not a variable of the preflight's model "
                                f"({PREFLIGHT}); run the preflight first")
    return model[name]
