"""Dataset loaders for the native layouts (IDX, UCI HAPT/HAR, speech WAV, npz).

Entry point: :func:`load_dataset` returns a normalised :class:`DataBundle`; see docs/data.md.
"""

from snnhw.data.base import DataBundle, Normalisation, SequenceDataset
from snnhw.data.registry import (DATASETS, dataset_options_help, load_dataset, load_split_for_eval,
                                 parse_option_strings, rebuild_bundle)

__all__ = ["DATASETS", "DataBundle", "Normalisation", "SequenceDataset", "dataset_options_help",
           "load_dataset", "load_split_for_eval", "parse_option_strings", "rebuild_bundle"]
