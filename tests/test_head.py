"""The classifier as a torch module: its argmax is ``predict`` eagerly, after ``torch.export``
and in ONNX Runtime; model files load in a fresh process and say what is wrong with bad ones."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from imprint import ImprintingClassifier
from imprint.deploy.model_file import KeptModel, load_model, save_model
from tests.conftest import in_fresh_process, make_task

CONFIGS = [
    {},
    {"gen": "mean", "norm_post": "quantile_sequential", "norm_inf": "none", "norm_pre": "none"},
    {"gen": "kls", "k": 3, "norm_post": "quantile"},
    {"gen": "ls", "norm_pre": "none", "norm_post": "none", "norm_inf": "none"},
    {"gen": "all", "agg": "mnn", "m": 5, "distance": "mahalanobis"},
    {"gen": "all", "agg": "mnn", "m": 4, "distance": "euclidean"},
    {"gen": "all", "agg": "mnn", "m": 4, "distance": "manhattan",
     "weighting": "weighted_by_distance"},
    {"gen": "kmeans", "k": 3, "agg": "mnn", "m": 3, "distance": "cosine"},
    {"gen": "random", "k": 3, "distance": "chebyshev", "norm_post": "quantile"},
    {"gen": "linear_probe", "norm_pre": "none", "norm_inf": "none"},
    {"gen": "knn", "k": 5},
    {"gen": "cache"},
]  # fmt: skip


@pytest.fixture(scope="module")
def data():
    x, y = make_task(n_classes=5, per_class=24, dim=6, modes=3, seed=3)
    x_test, _ = make_task(n_classes=5, per_class=30, dim=6, modes=3, seed=3, sample_seed=4)
    return x, np.array(["ant", "bee", "cat", "dog", "eel"])[y], x_test


def _rounded(x_test: np.ndarray) -> np.ndarray:
    """Test rows with ties: rounded coordinates, and exact copies of training-like rows."""
    return np.round(x_test, 0).astype(np.float32)


@pytest.mark.parametrize("params", CONFIGS)
def test_the_module_scores_as_decision_function_and_predicts_as_predict(data, params):
    x, y, x_test = data
    clf = ImprintingClassifier(**params).fit(x, y)
    head = clf.to_torch()
    for rows in (x_test, _rounded(x_test)):
        with torch.no_grad():
            scores = head(torch.from_numpy(rows)).numpy()
        np.testing.assert_allclose(scores, clf.decision_function(rows), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(head.classes[scores.argmax(1)], clf.predict(rows))
    assert head.classes.tolist() == clf.classes_.tolist()


@pytest.mark.parametrize("params", CONFIGS)
def test_torch_export_and_onnx_predict_as_predict(data, params, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    x, y, x_test = data
    clf = ImprintingClassifier(**params).fit(x, y)
    head = clf.to_torch()
    example = (torch.from_numpy(x_test[:7]),)
    dynamic = {"x": {0: torch.export.Dim("batch", min=1)}}
    exported = torch.export.export(head, example, dynamic_shapes=dynamic)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(head, example, dynamo=True, dynamic_shapes=dynamic)
    program.save(str(tmp_path / "head.onnx"))
    session = ort.InferenceSession(str(tmp_path / "head.onnx"))
    for rows in (x_test, _rounded(x_test)):
        expected = clf.predict(rows)
        scores = exported.module()(torch.from_numpy(rows)).detach().numpy()
        np.testing.assert_array_equal(head.classes[scores.argmax(1)], expected)
        (onnx_scores,) = session.run(None, {session.get_inputs()[0].name: rows})
        np.testing.assert_array_equal(head.classes[onnx_scores.argmax(1)], expected)


def test_a_saved_model_loads_in_a_fresh_process_and_predicts_the_same(data, tmp_path):
    x, y, x_test = data
    clf = ImprintingClassifier(gen="kmeans", k=3, agg="mnn", m=3, distance="euclidean")
    clf.fit(x, y)
    path = tmp_path / "model.pt"
    save_model(path, KeptModel(clf.to_torch(), None, clf.kept_state(), {"note": "test"}))
    np.save(tmp_path / "x.npy", x_test)
    script = (
        "import numpy as np, torch, sys\n"
        "from imprint.deploy.model_file import load_model\n"
        f"model = load_model({str(path)!r})\n"
        f"x = torch.from_numpy(np.load({str(tmp_path / 'x.npy')!r}))\n"
        "print(' '.join(model.head.predict(x).tolist()))\n"
        "print(' '.join(model.classifier().predict(x.numpy()).tolist()), model.info['note'])\n"
    )
    out = in_fresh_process(script).splitlines()
    expected = " ".join(clf.predict(x_test).tolist())
    assert out == [expected, f"{expected} test"]


def test_bad_model_files_say_what_they_are_not(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(tmp_path / "missing.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(ValueError, match=r"not an imprint model file \(not a PyTorch file"):
        load_model(tmp_path / "text.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "state.pt")
    with pytest.raises(ValueError, match="no 'imprint-model' record"):
        load_model(tmp_path / "state.pt")
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pt")
    with pytest.raises(ValueError, match="holding Python objects"):
        load_model(tmp_path / "module.pt")
    head_only = KeptModel(ImprintingClassifier(gen="mean").fit([[0.0], [1.0]], [0, 1]).to_torch())
    with pytest.raises(ValueError, match=r"no FM .* it scores embeddings, not images"):
        head_only.image_classifier()
    with pytest.raises(ValueError, match="keeps no training rows"):
        head_only.classifier()
