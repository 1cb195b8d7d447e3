"""PyTorch peers of posejax's networks and steps, for side-by-side throughput benchmarks.

Each peer implements the same computation as the posejax method it mirrors (same layers,
same pre/post-processing, same losses), written the way PyTorch users write it
(``nn.Module`` s, eager autograd, ``torch.optim.Adam``). ``load_*`` functions copy a
posejax ``TrainState`` into a peer, so tests can check the two agree on shared weights.

Needs ``torch==2.13.0`` (``pip install -e .[bench]``); posejax itself does not.
"""
