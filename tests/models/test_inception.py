"""The FID InceptionV3: weight conversion against direct float64 conv + batch norm, the weight file
format and its errors, and (where PyTorch, torchvision and pytorch-fid are installed) features
against pytorch-fid itself."""

import numpy as np
import pytest

from dbvq_jax.evaluate import inception

import helpers


def _conv_bn_reference(x, weight, gamma, beta, mean, var, padding):
  """torch semantics in float64 loops: x [C, H, W], weight [O, C, kh, kw], stride 1 -> [O, H', W']."""
  x = np.pad(x, ((0, 0), (padding[0],) * 2, (padding[1],) * 2))
  o, _, kh, kw = weight.shape
  h, w = x.shape[1] - kh + 1, x.shape[2] - kw + 1
  y = np.zeros((o, h, w))
  for i in range(h):
    for j in range(w):
      y[:, i, j] = np.tensordot(weight, x[:, i : i + kh, j : j + kw], axes=3)
  return (
    gamma[:, None, None] * (y - mean[:, None, None]) / np.sqrt(var[:, None, None] + inception.BN_EPS)
    + beta[:, None, None]
  )


def test_folded_batch_norm_equals_conv_then_batch_norm():
  import jax.numpy as jnp
  from flax import linen as nn

  rng = np.random.default_rng(0)
  weight = rng.normal(size=(5, 3, 1, 3))
  gamma, beta, mean = rng.normal(size=(3, 5))
  var = rng.uniform(0.1, 2.0, 5)
  x = rng.normal(size=(3, 6, 7))
  kernel, bias = inception.fold_batch_norm(weight, gamma, beta, mean, var)
  conv = nn.Conv(5, (1, 3), padding=((0, 0), (1, 1)))
  got = conv.apply(
    {"params": {"kernel": jnp.asarray(kernel), "bias": jnp.asarray(bias)}},
    jnp.asarray(x.transpose(1, 2, 0)[None], jnp.float32),
  )
  np.testing.assert_allclose(
    np.asarray(got[0]).transpose(2, 0, 1),
    _conv_bn_reference(x, weight, gamma, beta, mean, var, (0, 1)),
    rtol=1e-4,
    atol=1e-4,
  )


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
  """Converted random weights written as the .npz the comparison reads."""
  path = str(tmp_path_factory.mktemp("inception") / "inception_fid.npz")
  return path, helpers.write_random_inception(path, seed=1)


def test_converted_weights_load_and_give_pool_features(weights_file):
  path, state = weights_file
  params = inception.load(path)
  kernel, bias = inception.fold_batch_norm(
    *(
      state[f"Mixed_6b.branch7x7_2.{k}"]
      for k in ("conv.weight", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var")
    )
  )
  np.testing.assert_array_equal(np.asarray(params["Mixed_6b"]["branch7x7_2"]["conv"]["kernel"]), kernel)
  np.testing.assert_array_equal(np.asarray(params["Mixed_6b"]["branch7x7_2"]["conv"]["bias"]), bias)
  images = np.random.default_rng(2).uniform(-1, 1, (2, 28, 28, 1)).astype(np.float32)
  features = np.asarray(inception.features_fn(params)(images))
  assert features.shape == (2, 2048) and np.all(np.isfinite(features)) and np.all(features >= 0)
  assert np.abs(features[0] - features[1]).max() > 0  # different images, different features
  rgb = np.asarray(inception.features_fn(params)(np.repeat(images, 3, -1)))
  np.testing.assert_allclose(features, rgb, rtol=1e-5, atol=1e-6)  # grey is read as R = G = B


def test_bad_weight_files_are_named(weights_file, tmp_path):
  with pytest.raises(FileNotFoundError, match="convert them"):
    inception.load(str(tmp_path / "missing.npz"))
  (tmp_path / "corrupt.npz").write_bytes(b"not a zip file")
  with pytest.raises(ValueError, match="cannot read"):
    inception.load(str(tmp_path / "corrupt.npz"))
  with np.load(weights_file[0]) as f:
    partial = {k: f[k] for k in f.files if not k.startswith("Mixed_7c/")}
  np.savez(tmp_path / "partial.npz", **partial)
  with pytest.raises(ValueError, match="missing.*Mixed_7c"):
    inception.load(str(tmp_path / "partial.npz"))
  with pytest.raises(ValueError, match="unexpected entries"):
    inception.from_torch_state_dict({"Mixed_5b.branch1x1.weight": np.zeros(3)})


def test_features_match_pytorch_fid():
  """pytorch-fid's InceptionV3 with random weights (its download replaced by them) against the Flax
  port fed the converted weights. Skipped where PyTorch is absent (CI); run with it installed."""
  torch = pytest.importorskip("torch")
  pytest.importorskip("torchvision")
  fid_inception = pytest.importorskip("pytorch_fid.inception")
  import torchvision

  torch.manual_seed(0)
  source = torchvision.models.inception_v3(num_classes=1008, aux_logits=False, weights=None, init_weights=True)
  for m in source.modules():
    if isinstance(m, torch.nn.BatchNorm2d):  # running statistics of one batch, random affine parameters
      m.momentum = None
      m.reset_running_stats()
      torch.nn.init.normal_(m.weight, 1.0, 0.2)
      torch.nn.init.normal_(m.bias, 0.0, 0.2)
  with torch.no_grad():
    source.train()(torch.rand(4, 3, 299, 299) * 2 - 1)
  state = {k: v.clone() for k, v in source.state_dict().items()}
  fid_inception.load_state_dict_from_url = lambda *args, **kwargs: state
  reference = fid_inception.InceptionV3([fid_inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
  images = np.random.default_rng(3).uniform(0, 1, (3, 32, 32, 3)).astype(np.float32)
  with torch.no_grad():
    expected = reference(torch.from_numpy(images.transpose(0, 3, 1, 2)))[0][:, :, 0, 0].numpy()
  params = inception.from_torch_state_dict({k: v.numpy() for k, v in state.items()})
  import flax.traverse_util

  got = np.asarray(inception.features_fn(flax.traverse_util.unflatten_dict(params, sep="/"))(images * 2 - 1))
  np.testing.assert_allclose(got, expected, rtol=2e-3, atol=2e-3 * np.abs(expected).max())
