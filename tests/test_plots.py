"""ui.plots: figure builders that pages share."""
import numpy as np

from ui import plots


def test_map_grid_draws_rgb_images_as_images_and_maps_as_heatmaps():
    rgb = np.zeros((20, 20, 3), np.uint8)
    rgb[..., 0] = 255
    fig = plots.map_grid([rgb, np.ones((20, 20))], ["red", "map"], columns=2, diverging=False, colorbars=False)
    kinds = [trace.type for trace in fig.data]
    assert kinds == ["image", "heatmap"]
    assert np.asarray(fig.data[0].z).shape == (20, 20, 3) and np.asarray(fig.data[0].z)[0, 0].tolist() == [255, 0, 0]


def test_learning_curves_mark_where_a_later_phase_begins():
    history = {"loss": [1.0, 0.8, 0.7], "val_loss": [1.1, 0.9, 0.8]}
    fig = plots.learning_curves({"run": history}, "loss", phases=[("Head on cached features", 2), ("Fine-tuning (lr 1e-05)", 1)])
    lines = [shape for shape in fig.layout.shapes if shape.type == "line"]
    assert len(lines) == 1 and lines[0].x0 == 2.5
    assert [a.text for a in fig.layout.annotations] == ["Fine-tuning"]
    assert not plots.learning_curves({"run": history}, "loss").layout.shapes
