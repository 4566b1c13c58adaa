"""Training loops and the checkpoint format.

* :mod:`snnhw.train.trainer`: ``fit`` (AdamW, cross-entropy, early stopping, best-validation
  weights, per-epoch history) and ``evaluate``.
* :mod:`snnhw.train.checkpoint`: ``save_checkpoint`` / ``load_checkpoint`` (safe to load:
  tensors and JSON only) and the ``Checkpoint`` record.
* :mod:`snnhw.train.seed`: seeding, determinism and thread settings.
* :mod:`snnhw.train.distributed`: devices, data-parallel training in K processes
  (``torch.distributed``; spawned or under ``torchrun``) and its rank helpers.
"""
