"""InceptionV3 as used for FID (the 2015-12-05 TensorFlow graph, as ported by pytorch-fid), in Flax.

Only the path to the 2048-d pool features is built. Each convolution carries its batch norm folded
into a bias (evaluate/inception.py does the folding when converting weights), so the parameters are
one `params` collection of `kernel` [kh, kw, in, out] and `bias` [out] per convolution. The FID
variant differs from torchvision's InceptionV3 in its pooling branches: average pools exclude the
padding from the count, and the last block (Mixed_7c) max-pools instead.
"""

from __future__ import annotations

import flax.linen as nn
import jax


class ConvReLU(nn.Module):
  """Convolution (batch norm folded into its bias) then ReLU; padding is symmetric (ph, pw)."""

  features: int
  kernel: tuple[int, int]
  strides: int = 1
  padding: tuple[int, int] = (0, 0)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    pad = tuple((p, p) for p in self.padding)
    return nn.relu(nn.Conv(self.features, self.kernel, strides=self.strides, padding=pad, name="conv")(x))


def _avg_pool(x: jax.Array) -> jax.Array:
  return nn.avg_pool(x, (3, 3), (1, 1), padding=((1, 1), (1, 1)), count_include_pad=False)


def _max_pool(x: jax.Array, stride: int = 2) -> jax.Array:
  return nn.max_pool(x, (3, 3), (stride, stride), padding="VALID" if stride == 2 else ((1, 1), (1, 1)))


class InceptionA(nn.Module):
  pool_features: int

  @nn.compact
  def __call__(self, x):
    b1 = ConvReLU(64, (1, 1), name="branch1x1")(x)
    b5 = ConvReLU(48, (1, 1), name="branch5x5_1")(x)
    b5 = ConvReLU(64, (5, 5), padding=(2, 2), name="branch5x5_2")(b5)
    b3 = ConvReLU(64, (1, 1), name="branch3x3dbl_1")(x)
    b3 = ConvReLU(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(b3)
    b3 = ConvReLU(96, (3, 3), padding=(1, 1), name="branch3x3dbl_3")(b3)
    bp = ConvReLU(self.pool_features, (1, 1), name="branch_pool")(_avg_pool(x))
    return jax.numpy.concatenate([b1, b5, b3, bp], -1)


class InceptionB(nn.Module):
  @nn.compact
  def __call__(self, x):
    b3 = ConvReLU(384, (3, 3), strides=2, name="branch3x3")(x)
    bd = ConvReLU(64, (1, 1), name="branch3x3dbl_1")(x)
    bd = ConvReLU(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
    bd = ConvReLU(96, (3, 3), strides=2, name="branch3x3dbl_3")(bd)
    return jax.numpy.concatenate([b3, bd, _max_pool(x)], -1)


class InceptionC(nn.Module):
  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c7 = self.channels_7x7
    b1 = ConvReLU(192, (1, 1), name="branch1x1")(x)
    b7 = ConvReLU(c7, (1, 1), name="branch7x7_1")(x)
    b7 = ConvReLU(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
    b7 = ConvReLU(192, (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
    bd = ConvReLU(c7, (1, 1), name="branch7x7dbl_1")(x)
    bd = ConvReLU(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
    bd = ConvReLU(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
    bd = ConvReLU(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
    bd = ConvReLU(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
    bp = ConvReLU(192, (1, 1), name="branch_pool")(_avg_pool(x))
    return jax.numpy.concatenate([b1, b7, bd, bp], -1)


class InceptionD(nn.Module):
  @nn.compact
  def __call__(self, x):
    b3 = ConvReLU(192, (1, 1), name="branch3x3_1")(x)
    b3 = ConvReLU(320, (3, 3), strides=2, name="branch3x3_2")(b3)
    b7 = ConvReLU(192, (1, 1), name="branch7x7x3_1")(x)
    b7 = ConvReLU(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
    b7 = ConvReLU(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
    b7 = ConvReLU(192, (3, 3), strides=2, name="branch7x7x3_4")(b7)
    return jax.numpy.concatenate([b3, b7, _max_pool(x)], -1)


class InceptionE(nn.Module):
  """Mixed_7b pools by average (padding excluded), Mixed_7c (`max_pool`) by max."""

  max_pool: bool

  @nn.compact
  def __call__(self, x):
    b1 = ConvReLU(320, (1, 1), name="branch1x1")(x)
    b3 = ConvReLU(384, (1, 1), name="branch3x3_1")(x)
    b3 = [
      ConvReLU(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
      ConvReLU(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(b3),
    ]
    bd = ConvReLU(448, (1, 1), name="branch3x3dbl_1")(x)
    bd = ConvReLU(384, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
    bd = [
      ConvReLU(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
      ConvReLU(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd),
    ]
    pooled = _max_pool(x, stride=1) if self.max_pool else _avg_pool(x)
    bp = ConvReLU(192, (1, 1), name="branch_pool")(pooled)
    return jax.numpy.concatenate([b1, *b3, *bd, bp], -1)


class InceptionV3(nn.Module):
  """Images [B, 299, 299, 3] scaled to [-1, 1] -> pool features [B, 2048]."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = ConvReLU(32, (3, 3), strides=2, name="Conv2d_1a_3x3")(x)
    x = ConvReLU(32, (3, 3), name="Conv2d_2a_3x3")(x)
    x = ConvReLU(64, (3, 3), padding=(1, 1), name="Conv2d_2b_3x3")(x)
    x = _max_pool(x)
    x = ConvReLU(80, (1, 1), name="Conv2d_3b_1x1")(x)
    x = ConvReLU(192, (3, 3), name="Conv2d_4a_3x3")(x)
    x = _max_pool(x)
    for name, pool_features in (("Mixed_5b", 32), ("Mixed_5c", 64), ("Mixed_5d", 64)):
      x = InceptionA(pool_features, name=name)(x)
    x = InceptionB(name="Mixed_6a")(x)
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
      x = InceptionC(c7, name=name)(x)
    x = InceptionD(name="Mixed_7a")(x)
    x = InceptionE(max_pool=False, name="Mixed_7b")(x)
    x = InceptionE(max_pool=True, name="Mixed_7c")(x)
    return x.mean(axis=(1, 2))
