"""The preflight's model, read where it is registered (``sitekit_preflight``) by the collection's
action plugins: Ansible's templating of the model's lists as arguments took 18 s at 10,000
sites, reading them in place takes nothing."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail

#: The preflight's registered result, whose ``model`` holds the model's variables.
PREFLIGHT = "sitekit_preflight"


def alias(name):
    """The text the sitekit role's vars give a variable of the preflight's model."""
    return "{{ " + PREFLIGHT + ".model." + name + " }}"


def registered(task_vars):
    """The model the preflight registered, as it was returned (an empty dict without it)."""
    result = task_vars.get(PREFLIGHT)
    model = result.get("model") if isinstance(result, dict) else None
    return model if isinstance(model, dict) else {}


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
