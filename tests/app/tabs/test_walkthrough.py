"""The issue's walkthrough in one test: open the example, deploy it on two local agents from the
Deploy tab, train it from the Learn tab to >= 95 % on the test range, then draw a digit in Run
and see it recognised by the deployment (which now holds the trained weights)."""

from __future__ import annotations

import numpy as np

from engine.graph import Network
from tests.app.tabs.conftest import spawn_agent, wait_agents
from tests.app.tabs.test_run_tab import _stroke, _wait_result


def test_open_deploy_train_draw(qtbot, local_window):
    win = local_window
    state = win.net_state
    proc, other = spawn_agent("tabs-walk")
    try:
        deploy = win.deploy_tab
        win.tabs.setCurrentWidget(deploy)
        wait_agents(qtbot, win, [other["name"]])
        local = state.default_agent().name
        pos = win.editor.display_positions()
        order = sorted(win.editor.desc.modules, key=lambda m: pos[m][0])
        deploy.canvas.select(order[:3])
        deploy.assign_selected(local)
        deploy.canvas.select(order[3:])
        deploy.assign_selected(other["name"])
        deploy.deploy()
        qtbot.waitUntil(lambda: deploy.status.text().startswith("Deployed"), timeout=10000)
        assert set(state.deployed_names.values()) == {local, other["name"]}

        learn = win.learn_tab
        win.tabs.setCurrentWidget(learn)
        qtbot.waitUntil(lambda: learn.data.info is not None, timeout=5000)
        learn.amount.setValue(300)  # from the shipped weights, on the train range 0-7999
        learn.lr.setValue(0.01)
        assert learn.start()
        qtbot.waitUntil(lambda: not learn.runner.running and learn.start_button.isEnabled(),
                        timeout=30000)
        assert learn.status.text().startswith("training done"), learn.status.text()
        learn.evaluate()
        qtbot.waitUntil(lambda: learn.last_eval is not None, timeout=15000)
        assert learn.last_eval["accuracy"] >= 0.95, learn.last_eval["accuracy"]

        run = win.run_tab
        win.tabs.setCurrentWidget(run)
        run.sources.setCurrentIndex(0)
        _stroke(qtbot, run.sources.canvas, [(140, 40 + 10 * i) for i in range(21)])
        probs, best = _wait_result(qtbot, run, None)
        assert best == "1"
        # the two-agent deployment answered, with the trained weights
        assert set(state.deployed_names.values()) == {local, other["name"]}
        from app.run_view.draw import to_input
        net = Network(win.editor.desc)
        net.set_weights(state.trained)
        x = to_input(run.sources.canvas.image, (1, 28, 28))
        np.testing.assert_allclose(probs, np.exp(np.asarray(net.forward(x[None]))[0]),
                                   rtol=1e-4, atol=1e-6)
    finally:
        proc.kill()
        proc.wait(5)
