"""A minimal safetensors writer and reader for float32 tensors (stdlib only; numpy used when
the tensors are numpy arrays). Files are written atomically: a temporary file beside the target,
flushed and synced, then renamed, so a reader (``circuitscope analyze --follow``) never sees
half a checkpoint. It must never write anything but the file it is asked to write.
"""

import json
import os
import struct


def _flatten(value):
    """(shape, flat list of floats) of a nested list of numbers."""
    if isinstance(value, (list, tuple)):
        if not value:
            return [0], []
        parts = [_flatten(v) for v in value]
        shape = parts[0][0]
        if any(p[0] != shape for p in parts):
            raise ValueError("a tensor given as nested lists must be rectangular")
        return [len(value)] + shape, [x for p in parts for x in p[1]]
    return [], [float(value)]


def tensor_bytes(value):
    """(shape, little-endian float32 bytes) of a numpy array, a torch tensor or nested lists."""
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().float().numpy()
    if hasattr(value, "astype") and hasattr(value, "shape"):  # a numpy array
        import numpy as np

        arr = np.ascontiguousarray(value, dtype="<f4")
        if not np.isfinite(arr).all():
            raise ValueError("a tensor holds NaN or Inf")
        return list(arr.shape), arr.tobytes()
    shape, flat = _flatten(value)
    for x in flat:
        if x != x or x in (float("inf"), float("-inf")):
            raise ValueError("a tensor holds NaN or Inf")
    return shape, struct.pack(f"<{len(flat)}f", *flat)


def encode(tensors, metadata=None):
    """The bytes of a safetensors file holding ``tensors`` (name -> tensor) as F32."""
    header, blobs, offset = {}, [], 0
    for name in tensors:
        shape, data = tensor_bytes(tensors[name])
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def write_atomic(path, data):
    """Writes ``data`` to ``path`` atomically (temporary file, fsync, rename)."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


def read(path):
    """name -> (shape, list of floats) of an F32 safetensors file (for tests and resuming)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, h in header.items():
        if h["dtype"] != "F32":
            raise ValueError(f"{path}: tensor {name} is {h['dtype']}, not F32")
        a, b = h["data_offsets"]
        blob = data[8 + n + a : 8 + n + b]
        out[name] = (h["shape"], list(struct.unpack(f"<{len(blob) // 4}f", blob)))
    return out
