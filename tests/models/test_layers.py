"""models.layers.Conv against a float64 numpy convolution on both of its paths; its parameters against
flax.linen.Conv's; remat leaves parameter names and gradients unchanged; bfloat16 computation keeps float32
parameters and outputs close to float32's."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from dbvq_jax import latents, priors
from dbvq_jax.models import classifier, layers, pixelcnn, toy, transformer, unet, vqvae
from dbvq_jax.train import toy as toy_train

import helpers

BF16_TOLERANCE = 0.05  # max |y_bf16 - y_f32| / max |y_f32|: bfloat16 keeps 8 bits (relative rounding 2^-9)


def _same_pads(n: int, k: int, s: int) -> tuple[int, int]:
  """TensorFlow's SAME: ceil(n / s) outputs, the padding split with the extra one at the end."""
  total = max((-(-n // s) - 1) * s + k - n, 0)
  return total // 2, total - total // 2


def _reference_conv(x, kernel, strides, pads) -> np.ndarray:
  """float64 convolution x [B, *S, C] (*) kernel [*k, C, O], one output position at a time."""
  x, kernel = np.asarray(x, np.float64), np.asarray(kernel, np.float64)
  x = np.pad(x, [(0, 0), *pads, (0, 0)])
  ks = kernel.shape[:-2]
  out_size = [(n - k) // s + 1 for n, k, s in zip(x.shape[1:-1], ks, strides, strict=True)]
  y = np.zeros((x.shape[0], *out_size, kernel.shape[-1]))
  for pos in np.ndindex(*out_size):
    window = x[(slice(None), *(slice(p * s, p * s + k) for p, s, k in zip(pos, strides, ks, strict=True)))]
    y[(slice(None), *pos)] = np.tensordot(window, kernel, axes=len(ks) + 1)
  return y


def _products(fn, *args) -> list:
  """The dot_general and conv_general_dilated equations of fn(*args), in sub-jaxprs too."""

  def eqns(jaxpr):
    for eqn in jaxpr.eqns:
      yield eqn
      for v in eqn.params.values():
        if hasattr(getattr(v, "jaxpr", v), "eqns"):
          yield from eqns(getattr(v, "jaxpr", v))

  jaxpr = jax.make_jaxpr(fn)(*args).jaxpr
  return [e for e in eqns(jaxpr) if e.primitive.name in ("dot_general", "conv_general_dilated")]


def _both_paths(monkeypatch, conv: layers.Conv, params: dict, x: np.ndarray) -> list:
  """[conv.apply(params, x) on the patches path, on lax.conv] in one compilation (use_patches forced at trace
  time), with full float32 products on accelerators too; each path is checked to be the one taken."""

  def apply(patches: bool):
    monkeypatch.setattr(layers, "use_patches", lambda out_size: patches)
    return lambda params, x: conv.apply(params, x)

  for patches in (True, False):
    lax_convs = [e for e in _products(apply(patches), params, x) if e.primitive.name == "conv_general_dilated"]
    assert bool(lax_convs) != patches
  with jax.default_matmul_precision("float32"):
    return jax.jit(lambda params, x: [apply(p)(params, x) for p in (True, False)])(params, x)


@pytest.mark.parametrize("rank", [1, 2])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("k", [1, 3, 4])
def test_conv_matches_reference(monkeypatch, rank, stride, k):
  """Both paths, SAME padding, spatial sides 21, 2, 1 (odd, even, below the kernel); the second 2-D side differs."""
  for n in (21, 2, 1):
    spatial = (n,) if rank == 1 else (n, n + 1)
    rng = np.random.default_rng(n)
    x, kernel, bias = (rng.normal(size=s).astype(np.float32) for s in ((2, *spatial, 3), (*(k,) * rank, 3, 4), 4))
    conv = layers.Conv(4, (k,) * rank, strides=stride)
    want = _reference_conv(x, kernel, (stride,) * rank, [_same_pads(m, k, stride) for m in spatial]) + bias
    patches, lax_conv = _both_paths(monkeypatch, conv, {"params": {"kernel": kernel, "bias": bias}}, x)
    np.testing.assert_allclose(patches, want, rtol=1e-5, atol=1e-5, err_msg=f"patches {n=}")
    np.testing.assert_allclose(lax_conv, want, rtol=1e-5, atol=1e-5, err_msg=f"lax.conv {n=}")


@pytest.mark.parametrize(
  "padding,pads", [("VALID", [(0, 0), (0, 0)]), (((1, 2), (0, 1)), [(1, 2), (0, 1)]), (1, [(1, 1), (1, 1)])]
)
def test_conv_explicit_padding(monkeypatch, padding, pads):
  """The other paddings flax.linen.Conv reads: 'VALID', (low, high) per axis, one int for all; on both paths."""
  x = np.random.default_rng(0).normal(size=(2, 6, 5, 3)).astype(np.float32)
  kernel = np.random.default_rng(1).normal(size=(3, 2, 3, 4)).astype(np.float32)
  conv = layers.Conv(4, (3, 2), strides=(2, 1), padding=padding, use_bias=False)
  for y in _both_paths(monkeypatch, conv, {"params": {"kernel": kernel}}, x):
    np.testing.assert_allclose(y, _reference_conv(x, kernel, (2, 1), pads), rtol=1e-5, atol=1e-5)


def test_use_patches_decision(monkeypatch):
  """Patches on the CPU backend for 1-D convolutions and 2-D output sides up to the threshold, never elsewhere."""
  size = layers.CPU_PATCHES_MAX_SIZE
  monkeypatch.setattr(jax, "default_backend", lambda: "cpu")
  assert layers.use_patches((size,)) and layers.use_patches((1, size)) and not layers.use_patches((size + 1, 1))
  assert layers.use_patches((size + 100,))
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  assert not layers.use_patches((1, 1))


def test_conv_is_a_drop_in_for_flax_conv():
  """The same automatic names, parameter shapes and initial values as flax.linen.Conv."""

  def net(conv):
    class Net(nn.Module):
      @nn.compact
      def __call__(self, x):
        return conv(2, (1, 1))(conv(5, (3, 3), strides=2, kernel_init=nn.initializers.normal(1.0))(x))

    return Net()

  x = jnp.ones((1, 7, 7, 3))
  ours, theirs = (jax.jit(net(conv).init)(jax.random.PRNGKey(0), x) for conv in (layers.Conv, nn.Conv))
  assert jax.tree.structure(ours) == jax.tree.structure(theirs)
  assert sorted(ours["params"]) == ["Conv_0", "Conv_1"]
  jax.tree.map(np.testing.assert_array_equal, ours, theirs)


def _random_params(shapes):
  """Normal(0, 0.1) parameters in the shapes and dtypes of a jax.eval_shape(init) tree: no zero-initialised output
  layers hiding the network, and no initialisation to compile."""
  rng = np.random.default_rng(7)
  return jax.tree.map(lambda x: (0.1 * rng.normal(size=x.shape)).astype(x.dtype), shapes)


REMAT = {
  "unet": (
    lambda remat: unet.UNet(4, 8, (1,), 0, attn_resolutions=(), dropout=0.2, remat=remat),
    lambda: (jax.random.normal(jax.random.PRNGKey(0), (2, 5, 5, 3)), jnp.array([3, 700])),
  ),
  "transformer": (
    lambda remat: transformer.Transformer(7, 6, width=8, depth=1, heads=2, dropout=0.2, remat=remat),
    lambda: (jax.random.randint(jax.random.PRNGKey(0), (2, 3, 3), 0, 7), jnp.array([3, 70])),
  ),
}


@pytest.mark.parametrize("name", sorted(REMAT))
def test_remat_keeps_parameter_names(name):
  make, inputs = REMAT[name]
  args = inputs()
  plain, remat = (jax.eval_shape(lambda r=r: make(r).init(jax.random.PRNGKey(1), *args)) for r in (False, True))
  assert plain == remat  # names (ResBlock_0, not CheckpointResBlock_0), shapes and dtypes


def test_unet_remat_gradients():
  """Training-mode gradients (dropout on, the same dropout key) of the U-Net with remat are the plain one's."""
  make, inputs = REMAT["unet"]
  args = inputs()
  params = _random_params(jax.eval_shape(lambda: make(False).init(jax.random.PRNGKey(1), *args)))

  def grad(net):
    loss = lambda p: jnp.sum(net.apply(p, *args, train=True, rngs={"dropout": jax.random.PRNGKey(3)}) ** 2)
    return jax.grad(loss)(params)

  close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
  jax.tree.map(close, *jax.jit(lambda: (grad(make(False)), grad(make(True))))())  # one compilation


def _bf16_cases():
  z, t, labels = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 5, 3)), jnp.array([3, 700]), jnp.array([0, 2])
  image = jax.random.uniform(jax.random.PRNGKey(1), (2, 8, 8, 3), minval=-1.0, maxval=1.0)
  tokens = jax.random.randint(jax.random.PRNGKey(2), (2, 3, 3), 0, 7)
  z_toy = jax.random.normal(jax.random.PRNGKey(3), (2, 5, 2))
  return {
    "unet": (
      lambda **kw: unet.UNet(4, 8, (1,), 0, attn_resolutions=(), num_labels=2, **kw),
      (z, t, None, False, labels),
    ),
    "transformer": (lambda **kw: transformer.Transformer(7, 6, 8, 1, 2, num_labels=2, **kw), (tokens, t, labels)),
    "pixelcnn": (
      lambda **kw: pixelcnn.GatedPixelCNN(5, 4, 2, first_kernel=3, num_labels=2, **kw),
      (jax.nn.one_hot(tokens % 5, 5), labels),
    ),
    "toy_mlp": (lambda **kw: toy.ToyMLP(3, hidden=16, depth=2, **kw), (z_toy, t, z_toy)),
    "toy_paper_conv": (lambda **kw: toy.PaperConvNet(3, channels=8, **kw), (z_toy, t, z_toy)),
    "encoder": (lambda **kw: vqvae.Encoder(8, 4, 1, latent_dim=4, **kw), (image,)),
    "decoder": (lambda **kw: vqvae.Decoder(3, 8, 4, 1, **kw), (z,)),
    "classifier": (lambda **kw: classifier.Classifier(3, 4, 8, **kw), (image,)),
  }


@pytest.mark.parametrize("name", sorted(_bf16_cases()))
def test_bfloat16_networks(name):
  """float32 parameters and outputs; every matrix product and convolution takes a bfloat16 operand; the output is
  within BF16_TOLERANCE of the float32 network's with the same parameters."""
  make, args = _bf16_cases()[name]
  f32, bf16 = make(), make(dtype=jnp.bfloat16)
  shapes = jax.eval_shape(lambda: bf16.init(jax.random.PRNGKey(4), *args))
  assert {p.dtype for p in jax.tree.leaves(shapes)} == {jnp.dtype(jnp.float32)}
  params = _random_params(shapes)
  products = _products(lambda p: bf16.apply(p, *args), params)
  assert products and all(any(v.aval.dtype == jnp.bfloat16 for v in e.invars) for e in products)
  outputs = jax.jit(lambda p: [jax.tree.leaves(net.apply(p, *args)) for net in (f32, bf16)])(params)
  for want, got in zip(*outputs, strict=True):
    assert got.dtype == jnp.float32
    assert float(jnp.max(jnp.abs(got - want))) <= BF16_TOLERANCE * float(jnp.max(jnp.abs(want)))


def test_model_dtype_config():
  """model.dtype names the computation dtype; an absent key is float32; anything else is a one-line error."""
  assert layers.model_dtype(ml_collections.ConfigDict({"dtype": "bfloat16"})) == jnp.bfloat16
  assert layers.model_dtype(ml_collections.ConfigDict({})) == jnp.float32  # run records from before the key
  with pytest.raises(ValueError, match="model.dtype must be one of"):
    layers.model_dtype(ml_collections.ConfigDict({"dtype": "float16"}))


@pytest.mark.parametrize("prior", priors.names())
def test_builders_pass_dtype_and_remat(prior):
  """model.dtype (and model.remat where the network has it) reach the prior's network; parameters stay float32."""
  config = helpers.load_config(f"prior:prior={prior},tiny")
  config.model.dtype = "bfloat16"
  if "remat" in config.model:
    config.model.remat = True
  built = priors.build(config, np.zeros((8, 4), np.float32), 4)
  net = built.denoiser if prior == "bridge" else built.network
  assert net.dtype == jnp.bfloat16 and net.param_dtype == jnp.float32
  if "remat" in config.model:
    assert net.remat


def test_vqvae_and_toy_builders_pass_dtype():
  """model.dtype reaches the VQ-VAE's encoder and decoder and both toy denoisers."""
  config = helpers.load_config("vqvae:tiny")
  config.model.dtype = "bfloat16"
  assert all(net.dtype == jnp.bfloat16 for net in latents.networks(config))
  config = helpers.load_config("toy:tiny")
  for name in toy_train.MODELS:
    config.model.update({"name": name, "dtype": "bfloat16"})
    assert toy_train.build_prior(config).denoiser.dtype == jnp.bfloat16
