"""Several contexts: windows are split across them and the result is the same as with one."""
import tusimple_duc  # noqa: F401  (before mxnet: sets the thread count)
import mxnet as mx
import numpy as np

from inference_toys import ProbeNet, make_tiny_conv_net, random_image
from tusimple_duc.inference import InferenceSpec, Predictor, forward_probabilities

CONTEXTS = [mx.cpu(0), mx.cpu(1)]


def test_two_contexts_give_the_same_result_as_one():
    net = make_tiny_conv_net(CONTEXTS)
    image = random_image(56, 72, seed=6)
    spec = InferenceSpec(mode="sliding", window=(32, 32), stride=(16, 16), batch_windows=2, flip=True)
    single = Predictor(net, spec, contexts=[mx.cpu(0)]).predict(image)
    probe = ProbeNet(net)
    double = Predictor(probe, spec, contexts=CONTEXTS).predict(image)
    np.testing.assert_allclose(double.probabilities, single.probabilities, atol=1e-6)
    np.testing.assert_array_equal(double.labels, single.labels)
    # 12 windows per pass, 4 per group (2 per context): both contexts get 2 windows per forward.
    assert set(probe.contexts) == set(CONTEXTS)
    assert [len(batch) for batch in probe.inputs] == [2] * 12


def test_forward_probabilities_splits_in_order_and_applies_softmax():
    net = make_tiny_conv_net(CONTEXTS)
    batch = np.random.RandomState(0).randn(3, 3, 16, 16).astype(np.float32)
    probe = ProbeNet(net)
    probabilities = forward_probabilities(probe, batch, CONTEXTS)
    assert [len(part) for part in probe.inputs] == [2, 1] and probe.contexts == CONTEXTS
    scores = net(mx.nd.array(batch)).asnumpy().astype(np.float64)
    expected = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    assert probabilities.shape == (3, 4, 8, 8) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)
    single = forward_probabilities(net, batch[:1], CONTEXTS)
    np.testing.assert_allclose(single, expected[:1], atol=1e-6)
