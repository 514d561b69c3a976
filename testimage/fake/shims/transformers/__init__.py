"""Stand-in for ``transformers`` -- taoplan TAO test image ONLY (not Hugging Face transformers!).

Implements only the calls that nvidia_tao_core 7.3.0's huggingface_inference_microservice_server
makes (AutoConfig / AutoModelForCausalLM / AutoModelForVision2Seq / AutoModel / AutoTokenizer /
AutoProcessor .from_pretrained, apply_chat_template, __call__, generate, batch_decode), so that the
REAL server module runs unchanged with a tiny fake model:

* ``from_pretrained`` accepts what the Hub client would accept: an existing local directory
  (which must contain config.json, read for real) or a syntactically valid repo id
  ("name" or "org/name"). Anything else -- e.g. "hf_model://org/name" or a missing absolute
  path -- raises OSError with transformers' own message, so the real server reports
  model_load_failed exactly as it would in production. Valid repo ids are not downloaded:
  the fake "Hub" knows every repo.
* A repo id / config that looks like a vision-language model gets a ``vision_config``, so the
  real ``_detect_model_type`` picks the VLM path (images are decoded with Pillow for real).
* ``generate`` answers with a JSON echo of what the real server passed to run_model_inference
  (see taoplan_fake/echo.py), token-encoded byte by byte; ``batch_decode`` turns it back into text.
* TAO_FAKE_LOAD_SECONDS / TAO_FAKE_LOAD_FAIL act inside AutoConfig.from_pretrained.
"""

import json as _json
import os as _os
import re as _re

import torch as _torch
from taoplan_fake import echo as _echo
from taoplan_fake import knobs as _knobs

__version__ = "0.0.0+taoplan.fake"
TAOPLAN_FAKE = True

_REPO_ID = _re.compile(r"^(\b[\w\-.]+\b/)?\b[\w\-.]+\b$")
_VLM_NAME = _re.compile(
    r"(?i)(?:^|[-_/.])vl(?:[-_/.]|$)|vlm|vision|llava|reason|omni|pixtral|blip|idefics|paligemma|"
    r"florence|molmo|internvl|minicpm-v|cogvlm"
)

PAD_ID, BOS_ID, EOS_ID, _OFFSET = 0, 1, 2, 3


def _resolve(name, what="config.json"):
    """('local', dir) or ('hub', repo_id); raise OSError like transformers does otherwise."""
    if isinstance(name, _os.PathLike):
        name = _os.fspath(name)
    if not isinstance(name, str) or not name:
        raise OSError(
            f"Incorrect path_or_model_id: '{name}'. Please provide either the path to a "
            "local folder or the repo_id of a model on the Hub."
        )
    if _os.path.isdir(name):
        if what and not _os.path.isfile(_os.path.join(name, what)):
            raise OSError(
                f"{name} does not appear to have a file named {what}. Checkout "
                f"'https://huggingface.co/{name}/tree/None' for available files."
            )
        return "local", name
    valid = (
        _REPO_ID.match(name)
        and "--" not in name
        and ".." not in name
        and not name.endswith(".git")
        and len(name) <= 96
    )
    if not valid:
        raise OSError(
            f"Incorrect path_or_model_id: '{name}'. Please provide either the path to a "
            "local folder or the repo_id of a model on the Hub."
        )
    return "hub", name


def _jsonable(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


def _load_kwargs(kwargs):
    out = {k: _jsonable(v) for k, v in kwargs.items() if k != "token"}
    out["token_present"] = bool(kwargs.get("token"))
    return out


class PretrainedConfig:
    def __init__(self, **kwargs):
        for key, value in kwargs.items():
            setattr(self, key, value)

    def to_dict(self):
        return {k: _jsonable(v) for k, v in self.__dict__.items()}


class AutoConfig:
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        _knobs.simulate_load("transformers.AutoConfig.from_pretrained", exc_type=OSError)
        kind, ref = _resolve(pretrained_model_name_or_path)
        if kind == "local":
            with open(_os.path.join(ref, "config.json"), encoding="utf-8") as handle:
                data = _json.load(handle)
        elif _VLM_NAME.search(ref):
            data = {
                "architectures": ["TaoplanFakeForConditionalGeneration"],
                "model_type": "taoplan_fake_vlm",
                "vision_config": {"taoplan_fake": True},
            }
        else:
            data = {"architectures": ["TaoplanFakeForCausalLM"], "model_type": "taoplan_fake_llm"}
        data["_name_or_path"] = ref
        return PretrainedConfig(**data)


class BatchEncoding(dict):
    def to(self, *_args, **_kwargs):
        return self

    def __getattr__(self, item):
        try:
            return self[item]
        except KeyError as exc:
            raise AttributeError(item) from exc


class _ByteTokenizer:
    pad_token = "<pad>"
    eos_token = "</s>"
    bos_token = "<s>"
    padding_side = "left"

    def __init__(self, name_or_path, kwargs):
        self.name_or_path = name_or_path
        self.init_kwargs = _load_kwargs(kwargs)

    @property
    def pad_token_id(self):
        return PAD_ID if self.pad_token is not None else None

    @property
    def eos_token_id(self):
        return EOS_ID

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        _resolve(pretrained_model_name_or_path, what=None)
        return cls(pretrained_model_name_or_path, kwargs)

    @staticmethod
    def encode(text, **_kwargs):
        return [BOS_ID] + [b + _OFFSET for b in str(text).encode("utf-8")]

    @staticmethod
    def decode(ids, skip_special_tokens=False, **_kwargs):
        if isinstance(ids, _torch.Tensor):
            ids = ids.tolist()
        out = bytearray()
        for token in ids:
            if token >= _OFFSET:
                out.append(token - _OFFSET)
            elif not skip_special_tokens:
                out.extend({PAD_ID: b"<pad>", BOS_ID: b"<s>", EOS_ID: b"</s>"}[token])
        return out.decode("utf-8", errors="replace")

    def batch_decode(self, sequences, skip_special_tokens=False, **kwargs):
        return [self.decode(seq, skip_special_tokens=skip_special_tokens, **kwargs) for seq in sequences]

    @staticmethod
    def _render(messages, add_generation_prompt):
        parts = []
        for message in messages:
            content = message.get("content")
            if isinstance(content, list):
                rendered = []
                for item in content:
                    kind = item.get("type")
                    if kind == "text":
                        rendered.append(item.get("text", ""))
                    elif kind in ("image", "video"):
                        rendered.append(f"<|{kind}|>")
                content = "".join(rendered)
            parts.append(f"<|{message.get('role')}|>\n{content}\n")
        if add_generation_prompt:
            parts.append("<|assistant|>\n")
        return "".join(parts)

    def apply_chat_template(self, messages, tokenize=True, add_generation_prompt=False, **_kwargs):
        text = self._render(messages, add_generation_prompt)
        return self.encode(text) if tokenize else text

    def __call__(self, text=None, return_tensors=None, padding=False, **_kwargs):
        texts = text if isinstance(text, (list, tuple)) else [text]
        rows = [self.encode(t) for t in texts]
        width = max(len(r) for r in rows)
        rows = [[PAD_ID] * (width - len(r)) + r for r in rows]
        masks = [[0 if t == PAD_ID else 1 for t in r] for r in rows]
        return BatchEncoding(input_ids=_torch.Tensor(rows), attention_mask=_torch.Tensor(masks))


AutoTokenizer = _ByteTokenizer


class AutoProcessor:
    """A processor = the byte tokenizer + an image step that really decodes the images."""

    def __init__(self, name_or_path, kwargs):
        self.tokenizer = _ByteTokenizer(name_or_path, kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        _resolve(pretrained_model_name_or_path, what=None)
        return cls(pretrained_model_name_or_path, kwargs)

    def apply_chat_template(self, messages, **kwargs):
        return self.tokenizer.apply_chat_template(messages, **kwargs)

    def batch_decode(self, *args, **kwargs):
        return self.tokenizer.batch_decode(*args, **kwargs)

    def __call__(self, text=None, images=None, return_tensors=None, padding=False, **kwargs):
        seen = []
        for image in images or []:
            image.load()  # decode for real: a broken image fails here, as in a real processor
            seen.append({"format": image.format, "mode": image.mode, "size": list(image.size)})
        encoding = self.tokenizer(text=text, return_tensors=return_tensors, padding=padding)
        if images:
            encoding["pixel_values"] = seen
        return encoding


class _FakeModel:
    def __init__(self, name_or_path, kind, kwargs):
        self.name_or_path = name_or_path
        self.kind = kind
        self.load_kwargs = _load_kwargs(kwargs)
        self.device = "cpu"
        self.dtype = kwargs.get("torch_dtype")
        self.generation_config = PretrainedConfig(max_new_tokens=None)
        self.config = PretrainedConfig(_name_or_path=name_or_path)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        kind, ref = _resolve(pretrained_model_name_or_path, what=None)
        return cls(ref, cls.__name__, kwargs)

    def to(self, *_args, **_kwargs):
        return self

    def eval(self):
        return self

    def generate(self, input_ids=None, attention_mask=None, pixel_values=None, **gen_kwargs):
        caller = _echo.find_caller_locals("run_model_inference") or {}
        server = caller.get("self")
        kwargs = caller.get("kwargs") or {}
        _knobs.simulate_inference()
        reply = _echo.build(
            self.name_or_path,
            kwargs,
            model_type=getattr(server, "model_type", None),
            loader=self.kind,
            load_kwargs=self.load_kwargs,
            generate_kwargs={k: _jsonable(v) for k, v in gen_kwargs.items()},
            images_seen=pixel_values or [],
        )
        answer = [b + _OFFSET for b in _json.dumps(reply, sort_keys=True).encode("utf-8")] + [EOS_ID]
        rows = input_ids.tolist() if isinstance(input_ids, _torch.Tensor) else [list(input_ids or [])]
        return _torch.Tensor([row + answer for row in rows])


class AutoModelForCausalLM(_FakeModel):
    pass


class AutoModelForVision2Seq(_FakeModel):
    pass


class AutoModelForImageTextToText(_FakeModel):
    pass


class AutoModel(_FakeModel):
    pass
