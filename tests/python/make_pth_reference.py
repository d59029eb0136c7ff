#!/usr/bin/python3
"""Loads a torch.save state dict with torch.load and writes its tensors (contiguous, same dtypes)
in vardp's HDF5 state-dict layout, for the C++ loader tests to compare against.

usage: make_pth_reference.py IN.pth OUT.h5     (Debian's /usr/bin/python3 with python3-torch)
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_pth_cases import write_ref  # noqa: E402

sd = torch.load(sys.argv[1], map_location="cpu")
write_ref(sd, sys.argv[2])
