#!/usr/bin/python3
"""Writes torch.save test files (and their expected values) for the .pth reader tests.

usage: make_pth_cases.py OUTDIR CASE [CASE ...]

For a case NAME it writes OUTDIR/NAME.pth and, when the file is loadable, OUTDIR/NAME_ref.h5:
the expected tensors, contiguous, in vardp's HDF5 state-dict layout ("vardp.state_dict":
/tensors/<key> datasets, @keys order, @dtype names; bfloat16 as uint16 bits, bool as uint8), so
the C++ test compares load_state_dict(NAME.pth) with load_state_dict(NAME_ref.h5).
Run with Debian's /usr/bin/python3 (python3-torch 1.13, h5py, numpy). Deterministic.
"""
import collections
import io
import os
import pickle
import struct
import sys
import zipfile

import h5py
import numpy as np
import torch


def write_ref(sd, path):
    """Expected values in the vardp.state_dict HDF5 layout."""
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "vardp.state_dict"
        f.attrs["format_version"] = np.int64(1)
        g = f.create_group("tensors")
        g.attrs["keys"] = list(sd.keys())
        for k, t in sd.items():
            t = t.detach().contiguous()
            name = str(t.dtype).replace("torch.", "")
            if t.dtype == torch.bfloat16:
                arr = t.view(torch.int16).numpy().view(np.uint16)
            elif t.dtype == torch.bool:
                arr = t.numpy().astype(np.uint8)
            else:
                arr = t.numpy()
            d = g.create_dataset(k, data=arr)
            d.attrs["dtype"] = {"float": "float32", "double": "float64", "half": "float16",
                                "long": "int64", "int": "int32", "short": "int16"}.get(name, name)


def dtypes_sd():
    g = torch.Generator().manual_seed(1)
    sd = collections.OrderedDict()
    sd["f32"] = torch.randn(3, 4, generator=g)
    sd["f16"] = torch.randn(5, generator=g).half()
    sd["bf16"] = torch.randn(2, 3, generator=g).bfloat16()
    sd["f64"] = torch.randn(2, 2, generator=g).double()
    sd["i64"] = torch.arange(-3, 3, dtype=torch.int64).reshape(2, 3) * 1_000_000_007
    sd["i32"] = torch.tensor([-7, 0, 2**31 - 1], dtype=torch.int32)
    sd["i16"] = torch.tensor([-300, 5], dtype=torch.int16)
    sd["i8"] = torch.tensor([-128, 127, 1], dtype=torch.int8)
    sd["u8"] = torch.tensor([0, 255, 17], dtype=torch.uint8)
    sd["bool"] = torch.tensor([True, False, True, True])
    sd["scalar"] = torch.tensor(3.25)
    sd["empty"] = torch.zeros(0, 3)
    return sd


def views_sd():
    g = torch.Generator().manual_seed(2)
    base = torch.randn(6, 5, generator=g)
    sd = collections.OrderedDict()
    sd["base"] = base
    sd["transposed"] = base.t()                 # strides (1, 5)
    sd["sliced"] = base[1:4, ::2]               # offset 5, strides (5, 2)
    sd["row"] = base[2]                         # contiguous part of a shared storage
    sd["tied"] = base                           # same storage, whole view (tied weights)
    sd["expanded"] = torch.randn(3, 1, generator=g).expand(3, 4)  # stride 0
    sd["bf16_t"] = torch.randn(4, 3, generator=g).bfloat16().t()
    return sd


def small_sd():
    g = torch.Generator().manual_seed(3)
    sd = collections.OrderedDict()
    sd["weight"] = torch.randn(4, 3, generator=g)
    sd["bias"] = torch.randn(4, generator=g)
    sd["steps"] = torch.tensor(7)
    sd["view"] = sd["weight"][1:, 1:]
    return sd


def save_with_metadata(sd, path, **kw):
    # like module.state_dict(): an OrderedDict carrying _metadata
    sd = collections.OrderedDict(sd)
    sd._metadata = collections.OrderedDict([("", {"version": 1}), ("sub", {"version": 2})])
    torch.save(sd, path, **kw)


def rewrite_zip(src, dst, prefix=None, extra=(), transform=None, align=None):
    """Copies a torch zip with another record prefix, extra records, transformed records and
    optionally torch-2.x-style 64-byte alignment of record data (padding extra field 'FB')."""
    zin = zipfile.ZipFile(src)
    records = []
    for info in zin.infolist():
        name = info.filename
        data = zin.read(name)
        old_prefix, rest = name.split("/", 1)
        if transform:
            data = transform(rest, data)
        records.append(((prefix or old_prefix) + "/" + rest, data))
    for rest, data in extra:
        records.append(((prefix or records[0][0].split("/", 1)[0]) + "/" + rest, data))
    with open(dst, "wb") as raw:
        with zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED) as z:
            for name, data in records:
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_STORED
                if align:
                    pos = raw.tell() + 30 + len(name.encode()) + 4
                    pad = (-pos) % align
                    info.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
                z.writestr(info, data)


class Evil:
    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return (self.fn, (self.arg,))


class Plain:  # pickled (protocol 2) as GLOBAL '__main__ Plain' + NEWOBJ + BUILD
    def __init__(self):
        self.x = 1


def write_pickle_zip(path, pickle_bytes, prefix="evil"):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(prefix + "/data.pkl", pickle_bytes)
        z.writestr(prefix + "/version", b"3\n")


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    P = lambda name: os.path.join(out, name)
    for case in sys.argv[2:]:
        if case == "dtypes":
            sd = dtypes_sd()
            save_with_metadata(sd, P("dtypes.pth"))
            write_ref(sd, P("dtypes_ref.h5"))
        elif case == "views":
            sd = views_sd()
            torch.save(sd, P("views.pth"))
            write_ref(sd, P("views_ref.h5"))
        elif case == "small":
            sd = small_sd()
            save_with_metadata(sd, P("small.pth"))
            write_ref(sd, P("small_ref.h5"))
        elif case == "plain_dict":
            sd = dict(dtypes_sd())
            torch.save(sd, P("plain_dict.pth"))
            write_ref(sd, P("plain_dict_ref.h5"))
        elif case == "params":
            g = torch.Generator().manual_seed(4)
            sd = collections.OrderedDict()
            sd["w"] = torch.nn.Parameter(torch.randn(2, 3, generator=g))
            sd["frozen"] = torch.nn.Parameter(torch.randn(3, generator=g), requires_grad=False)
            torch.save(sd, P("params.pth"))
            write_ref(sd, P("params_ref.h5"))
        elif case == "proto4":
            sd = views_sd()
            torch.save(sd, P("proto4.pth"), pickle_protocol=4)
            write_ref(sd, P("proto4_ref.h5"))
        elif case == "torch2_style":
            # what torch 2.x writes: record prefix "archive", byteorder and serialization id
            # records, data aligned to 64 bytes
            sd = dtypes_sd()
            save_with_metadata(sd, P("tmp_t2.pth"))
            rewrite_zip(P("tmp_t2.pth"), P("torch2_style.pth"), prefix="archive",
                        extra=[("byteorder", b"little"),
                               (".data/serialization_id", b"1234567890123456789012345678901234567890"),
                               (".data/version", b"3\n")],
                        align=64)
            os.remove(P("tmp_t2.pth"))
            write_ref(sd, P("torch2_style_ref.h5"))
        elif case == "big_endian":
            sd = dtypes_sd()
            torch.save(sd, P("tmp_be.pth"))
            sizes = {str(i): t.element_size() for i, t in enumerate(sd.values())}

            def swap(rest, data):
                if rest.startswith("data/"):
                    n = sizes[rest[5:]]
                    if n > 1:
                        return np.frombuffer(data, dtype=np.uint8).reshape(-1, n)[:, ::-1].tobytes()
                return data
            rewrite_zip(P("tmp_be.pth"), P("big_endian.pth"), transform=swap,
                        extra=[("byteorder", b"big")])
            os.remove(P("tmp_be.pth"))
            write_ref(sd, P("big_endian_ref.h5"))
        elif case == "legacy":
            torch.save(small_sd(), P("legacy.pth"), _use_new_zipfile_serialization=False)
        elif case == "torchscript":
            torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), P("torchscript.pth"))
        elif case == "nested":
            torch.save({"model": small_sd(), "epoch": 3}, P("nested.pth"))
        elif case == "tensor_only":
            torch.save(torch.ones(3), P("tensor_only.pth"))
        elif case == "evil":
            marker = os.path.join(out, "PWNED")
            cases = {
                "evil_os_system": Evil(os.system, "touch " + marker),
                "evil_eval": Evil(eval, "open(%r, 'w')" % marker),
                "evil_class": Plain(),
            }
            for name, obj in cases.items():
                write_pickle_zip(P(name + ".pth"), pickle.dumps({"w": obj}, protocol=2))
            # inside an otherwise genuine state dict: a tensor plus a hostile entry
            buf = io.BytesIO()
            sd = collections.OrderedDict(w=torch.ones(2), x=Evil(os.system, "touch " + marker))
            torch.save(sd, buf)
            with open(P("evil_in_state_dict.pth"), "wb") as f:
                f.write(buf.getvalue())
            # protocol 4 (STACK_GLOBAL) route to the same function
            write_pickle_zip(P("evil_stack_global.pth"),
                             pickle.dumps(Evil(os.system, "touch " + marker), protocol=4))
            # an opcode that does not exist
            write_pickle_zip(P("evil_unknown_opcode.pth"), b"\x80\x02}q\x00\xff.")
        else:
            sys.exit("unknown case " + case)


if __name__ == "__main__":
    main()
