"""Shared settings for the model tests: one CPU thread (the test machine is shared)."""

import torch

torch.set_num_threads(1)
