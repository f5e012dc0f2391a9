"""The Learn tab trains on the app's local agent: live plots get points, accuracy rises, the
trained weights are used by Evaluate (confusion heat map)."""

from __future__ import annotations

import numpy as np

from app.deploy_view.state import read_weights, weight_tags


def test_train_from_learn_tab(qtbot, local_window, tmp_path):
    win = local_window
    folder = tmp_path / "mnist-mlp"
    assert win.save_to(folder)  # a folder of its own, so tagged weights can be stored
    win.workers.wait_idle()
    tab = win.learn_tab
    win.tabs.setCurrentWidget(tab)
    qtbot.waitUntil(lambda: tab.data.info is not None, timeout=5000)
    assert tab.data.test.value() == 10  # the builder's default: test = 1/10
    s = tab.data.splits()
    assert s.train == (0, 8000) and s.validation == (8000, 9000) and s.test == (9000, 10000)
    tab.clean.setChecked(True)  # from random weights, so accuracy has to rise
    tab.lr.setValue(0.05)
    tab.amount.setValue(300)
    tab.tag.setText("gui")
    assert tab.start()
    qtbot.waitUntil(lambda: not tab.runner.running and tab.start_button.isEnabled(),
                    timeout=30000)
    assert tab.status.text().startswith("training done"), tab.status.text()
    x, y = tab.loss_curve.getData()
    assert len(x) >= 25 and x[-1] == 300  # a point every 10 iterations
    _, acc = tab.train_curve.getData()
    early, late = np.nanmean(acc[:3]), np.nanmean(acc[-5:])
    assert late > early + 0.3, (early, late)
    _, val = tab.val_curve.getData()
    assert len(val) >= 5 and val[-1] > 0.8
    trained = win.net_state.trained
    assert trained is not None
    # stored as <uuid>-gui files in the network folder, readable by tag
    qtbot.waitUntil(lambda: "gui" in weight_tags(folder), timeout=5000)
    win.workers.wait_idle()
    back = read_weights(win.editor.desc, folder, "gui")
    assert back.keys() == trained.keys()
    for mid in trained:
        np.testing.assert_array_equal(back[mid], trained[mid])

    tab.evaluate()
    qtbot.waitUntil(lambda: tab.last_eval is not None, timeout=15000)
    ev = tab.last_eval
    assert ev["samples"] == 1000 and ev["accuracy"] > 0.8
    assert np.asarray(ev["confusion"]).sum() == 1000
    img = tab.heat_image.image
    assert img.shape == (10, 10)
    np.testing.assert_allclose(img.sum(axis=0), 1.0, atol=1e-9)  # each true row sums to 1
    assert "accuracy" in tab.eval_text.text()
