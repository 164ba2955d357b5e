"""The lowest layer of training: the train state and optimizer (state.py), orbax checkpoints (checkpoint.py)
and the jitted, sharded loop (loop.py). Everything above (latents, evaluate, train's experiments) imports
these; they import nothing above them."""
