"""Ansible's linear strategy, run through Mitogen when it is installed (ansible.cfg selects it).

Mitogen keeps one Python interpreter per host for the whole run and hands it each module, where
Ansible starts a new interpreter (and copies the module) for every task. Measured side by side
(bench/playbook.py, docs/deploying.md): a no-op deploy of the local inventory takes about half
the CPU time. Mitogen's own strategy directory sits inside whichever site-packages it was
installed in; this file finds it by import, as the ``mitogen_linear.py`` Mitogen ships does.

Without Mitogen (an ``ansible-playbook`` outside the project's virtualenv) this is the plain
linear strategy: the same tasks and results, slower. ``ANSIBLE_STRATEGY=linear`` chooses that
explicitly.
"""

try:
    import ansible_mitogen.loaders
    import ansible_mitogen.strategy
except ImportError:
    from ansible.plugins.strategy.linear import StrategyModule
else:
    _Linear = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)

    class StrategyModule(ansible_mitogen.strategy.StrategyMixin, _Linear):
        pass
