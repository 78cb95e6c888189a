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


def test_map_picture_uses_the_charts_colours_centred_on_zero():
    arr = np.array([[-2.0, 0.0], [1.0, 2.0]], np.float32)
    pic = plots.map_picture(arr, side=8)
    assert pic.dtype == np.uint8 and pic.shape == (8, 8, 3)  # each value a 4 x 4 block
    blue, red = plots.DIVERGING[0][1], plots.DIVERGING[-1][1]
    assert pic[0, 0].tolist() == list(plotly_rgb(blue)) and pic[7, 7].tolist() == list(plotly_rgb(red))
    assert min(pic[0, 4]) > 240  # 0 is white
    # A shared half-range: 1.0 of 4.0 is a pale red, not the darkest.
    assert plots.map_picture(arr, zmax=4.0, side=2)[1, 0].tolist() != pic[7, 7].tolist()
    big = plots.map_picture(np.zeros((600, 300)), side=256)
    assert big.shape == (256, 128, 3)  # large maps shrink to the side


def plotly_rgb(colour):
    import plotly.colors
    return plotly.colors.unlabel_rgb(colour)


def test_picture_width_keeps_enlarged_pictures_sharp_and_stretches_the_others():
    digit = np.zeros((28, 28))
    assert plots.picture_width(plots.map_picture(digit, side=256), digit, 256) == 252  # 9 x 28: as it is
    photo_map = np.zeros((104, 158))
    assert plots.picture_width(plots.map_picture(photo_map, side=256), photo_map, 256) == 256
