"""Stand-in for ``torch`` -- taoplan TAO test image ONLY (not PyTorch!).

Provides just the names that nvidia_tao_core's huggingface_inference_microservice_server
touches (dtypes, cuda.is_available, no_grad, Generator, a list-backed Tensor) so that the real
server module can run against the fake ``transformers``/``diffusers`` in this directory.
"""

import types as _types

__version__ = "0.0.0+taoplan.fake"
TAOPLAN_FAKE = True


class dtype:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"torch.{self.name}"

    __str__ = __repr__


float16 = half = dtype("float16")
float32 = float = dtype("float32")
bfloat16 = dtype("bfloat16")
int64 = long = dtype("int64")


def _false(*_args, **_kwargs):
    return False


cuda = _types.SimpleNamespace(is_available=_false, device_count=lambda: 0)
backends = _types.SimpleNamespace(mps=_types.SimpleNamespace(is_available=_false))


class no_grad:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __call__(self, func):
        def wrapper(*args, **kwargs):
            with no_grad():
                return func(*args, **kwargs)

        return wrapper


inference_mode = no_grad


class Generator:
    def __init__(self, device="cpu"):
        self.device = device
        self.seed = None

    def manual_seed(self, seed):
        self.seed = seed
        return self


class Tensor:
    """A list-backed 1-D or 2-D integer tensor (enough for token ids)."""

    def __init__(self, data):
        self._data = [list(row) if isinstance(row, (list, tuple, Tensor)) else row for row in data]

    @property
    def shape(self):
        if self._data and isinstance(self._data[0], list):
            return (len(self._data), len(self._data[0]))
        return (len(self._data),)

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def tolist(self):
        return [list(r) if isinstance(r, list) else r for r in self._data]

    def to(self, *_args, **_kwargs):
        return self

    def __len__(self):
        return len(self._data)

    def __iter__(self):
        for row in self._data:
            yield Tensor(row) if isinstance(row, list) else row

    def __getitem__(self, key):
        value = self._data[key]
        if isinstance(key, slice):
            return Tensor(value)
        return Tensor(value) if isinstance(value, list) else value

    def __repr__(self):
        return f"tensor({self._data!r})"


def tensor(data, **_kwargs):
    return Tensor(data)


from . import nn  # noqa: E402,F401
