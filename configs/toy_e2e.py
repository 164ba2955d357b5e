"""The toy trained end to end (App. E): a random codebook learned with the bridge prior.

The codebook gets gradients from the Gumbel-softmax reconstruction of x and from the regulariser
-L_t^reg; the temperatures are scaled to the toy's unit-circle geometry (tau_t spans [tau/10, 10 tau]
as App. C's 0.1..10 spans it around tau = 1).

  python -m dbvq_jax.main --config=configs/toy_e2e.py --workdir=runs/toy_e2e
"""

from configs import toy


def get_config():
  c = toy.get_config()
  c.quantize.learn_codebook = True
  c.quantize.init_std = 0.5
  c.quantize.tau = 0.3
  c.quantize.tau_0 = 0.03
  c.quantize.tau_T = 3.0
  c.quantize.reg_weight = 1.0
  c.quantize.rec_weight = 1.0
  return c
