"""Stand-in for ``diffusers`` -- taoplan TAO test image ONLY (not Hugging Face diffusers!).

Just enough for the diffusion branch of nvidia_tao_core's huggingface_inference_microservice_server:
``*.from_pretrained`` (same name rules and TAO_FAKE_LOAD_* knobs as the fake transformers) returns a
pipeline whose call produces one 8x8 image.
"""

import types as _types

import transformers as _transformers
from PIL import Image as _Image
from taoplan_fake import knobs as _knobs

__version__ = "0.0.0+taoplan.fake"
TAOPLAN_FAKE = True


class DiffusionPipeline:
    def __init__(self, name_or_path, kwargs):
        self.name_or_path = name_or_path
        self.load_kwargs = _transformers._load_kwargs(kwargs)
        self.calls = []

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        _knobs.simulate_load(f"diffusers.{cls.__name__}.from_pretrained", exc_type=OSError)
        kind, ref = _transformers._resolve(pretrained_model_name_or_path, what=None)
        return cls(ref, kwargs)

    def to(self, *_args, **_kwargs):
        return self

    def __call__(self, **kwargs):
        _knobs.simulate_inference()
        self.calls.append({k: _transformers._jsonable(v) for k, v in kwargs.items()})
        return _types.SimpleNamespace(images=[_Image.new("RGB", (8, 8), (118, 185, 0))], frames=None)


class AutoPipelineForText2Image(DiffusionPipeline):
    pass


class AutoPipelineForImage2Image(DiffusionPipeline):
    pass
