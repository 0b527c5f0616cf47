"""Stacked trials: how many runs one stack may hold.

Trials of a tuning study that share a seed start from the same weights and
see the same minibatches; only their optimizer's settings differ. A stack
trains them together (:func:`nnbench.train.train_stack`, the one training
loop, of which a run alone is a stack of one): their K flat vectors are the
rows of one ``(K, n_params)`` array, every layer's products are batched over
the K members (one call that loops in C over K matrix products, instead of K
Python calls each), the minibatch is gathered once, and one evaluation pass
scores all K.

Every member computes exactly what it would alone: the batched products
make the same BLAS call per member as a single run, element-wise work is
element-wise, and the cost sums are taken per member
(:meth:`nnbench.mlp.MLP.losses_and_grads`). A stacked trial's weights and
metrics are therefore bit for bit those of the same trial run alone
(``tests/test_stack.py``; :func:`nnbench.testing.check_optimizer` for any
optimizer; the gate's mutation study on the CI grids).

What a stack cannot give is one run's training time: its clock runs for
all K members at once. Its rows carry the stack's seconds in their own
column, ``stack_seconds``; ``train_seconds``, ``train_cpu_seconds`` and
``eval_seconds`` are left empty.
"""

from __future__ import annotations

from collections.abc import Sequence

# The most members a stack takes: memory grows with K (a (K, n_params) array
# per optimizer state entry), the gain stops growing long before.
MAX_STACK = 32
# ... and at most this many weights in all (K x n_params): 8 million, 32 MB
# in float32 per array (Adam keeps five such arrays with its temporaries).
# The extended study's largest network (101,770 weights) stacks 32 trials;
# a 784-500-300-10 network (545,810) stacks 14.
MAX_STACK_PARAMS = 8_000_000
# ... and at most this many activations (K x batch rows x the widths of the
# hidden and output layers, each held about twice: values and deltas) unless
# one member alone needs more: a stack's worker then holds one run's
# activations, or 4 million numbers (16 MB in float32) when that is more, never
# K times a run's. Full-batch MNIST with hidden [100] (6.6 million a member)
# trains alone; 128-row minibatches of it stack 32 trials.
MAX_STACK_ACTIVATIONS = 4_000_000


def max_members(n_params: int, batch_rows: int | None, widths: Sequence[int]) -> int:
    """How many members a stack of a network with ``n_params`` weights may hold,
    training on minibatches of up to ``batch_rows`` rows (None: not known) with
    layers of these ``widths`` (hidden and output): within :data:`MAX_STACK`,
    :data:`MAX_STACK_PARAMS` weights and :data:`MAX_STACK_ACTIVATIONS`; at least 1."""
    size = min(MAX_STACK, MAX_STACK_PARAMS // max(1, n_params))
    if batch_rows is not None:
        size = min(size, MAX_STACK_ACTIVATIONS // max(1, batch_rows * sum(widths)))
    return max(1, size)
