"""``cosmos_predict``: the production command-line shape, the real TAO base server, a fake model.

    cosmos_predict inference_microservice start (--checkpoint-path P | --model KEY)
        [--output-dir D] [--port 8080] [--idle-timeout-minutes F] [--context-parallel-size N]
        [--disable-guardrails] [--offload-guardrail-models] [--offload-diffusion-model]
        [--pid-file PATH]
    cosmos_predict inference_microservice stop [--pid-file PATH]

Boolean flags also accept the tyro-style ``--no-<flag>`` form. The chat reply content is
``data:video/mp4;base64,<small mp4>``; the mp4 is an ``ftyp`` box followed by a ``free`` box whose
payload is the JSON echo (see echo.py), and a copy is written to --output-dir.
"""

import argparse
import base64
import contextlib
import datetime
import json
import os
import signal
import struct
import sys
import uuid

from . import echo, hooks, knobs

hooks.ENTRYPOINT = "cosmos_predict"
hooks.ensure_patched()

from nvidia_tao_core.microservices.handlers.base_inference_microservice_server import (  # noqa: E402
    BaseInferenceMicroserviceServer,
)

logger = knobs.logger

MODEL_KEYS = ("base-2b", "base-14b", "auto-multiview")
DEFAULT_PID_FILE = "/tmp/cosmos_predict2_microservice.pid"
DEFAULT_OUTPUT_DIR = "/tmp/cosmos-predict2.5/outputs"
_CLOUD_PREFIXES = ("s3://", "gs://", "az://", "cs://", "aws://")


def tiny_mp4(payload: bytes) -> bytes:
    """A few dozen bytes of ISO-BMFF: ftyp + free(payload) + empty mdat."""
    ftyp = b"isom" + struct.pack(">I", 0x200) + b"isom" + b"iso2" + b"mp41"
    boxes = [(b"ftyp", ftyp), (b"free", payload), (b"mdat", b"")]
    return b"".join(struct.pack(">I", 8 + len(body)) + kind + body for kind, body in boxes)


class FakeCosmosPredictServer(BaseInferenceMicroserviceServer):
    """Real BaseInferenceMicroserviceServer; only the (video diffusion) model is fake."""

    def get_supported_file_extensions(self):
        return (
            [".jpg", ".jpeg", ".png", ".bmp", ".tiff", ".webp", ".gif"],
            [".mp4", ".mkv", ".webm", ".avi", ".mov"],
        )

    def load_model_into_memory(self, **kwargs) -> bool:
        knobs.simulate_load("cosmos-predict2.5")
        checkpoint = kwargs.get("checkpoint_path")
        model_key = kwargs.get("model_key")
        if checkpoint:
            if checkpoint.startswith(_CLOUD_PREFIXES) or "://" in checkpoint:
                raise ValueError(f"Cloud/remote checkpoint URIs are not supported: {checkpoint}")
            if not os.path.isabs(checkpoint):
                raise ValueError(f"--checkpoint-path must be an absolute path: {checkpoint}")
        elif model_key not in MODEL_KEYS:
            raise ValueError(f"Unknown model key {model_key!r}; registered keys: {', '.join(MODEL_KEYS)}")
        output_dir = kwargs.get("output_dir") or DEFAULT_OUTPUT_DIR
        os.makedirs(output_dir, exist_ok=True)
        self.model = {"model_path": checkpoint or model_key, "output_dir": output_dir}
        logger.info("fake cosmos-predict2.5 model 'loaded': %s", self.model["model_path"])
        return True

    def run_model_inference(self, **kwargs):
        for item in kwargs.get("media") or []:
            self._reject_cloud_uri(item)
        knobs.simulate_inference()
        body = echo.request_body() or {}
        reply = echo.build(self.model["model_path"], kwargs)
        reply["predict_params"] = {
            "num_output_frames": body.get("max_tokens", 77),
            "guidance": body.get("guidance", 7),
            "num_steps": body.get("num_steps", 35),
            "seed": body.get("seed", 0),
            "negative_prompt": body.get("negative_prompt", ""),
        }
        video = tiny_mp4(json.dumps(reply, sort_keys=True).encode("utf-8"))
        stamp = datetime.datetime.now().strftime("%Y%m%d_%H%M%S_%f")
        out_path = os.path.join(self.model["output_dir"], f"{self.job_id}_{stamp}.mp4")
        try:
            with open(out_path, "wb") as handle:
                handle.write(video)
        except OSError as exc:
            logger.warning("could not write %s: %s", out_path, exc)
            out_path = None
        return {
            "response": "data:video/mp4;base64," + base64.b64encode(video).decode("ascii"),
            "output_path": out_path,
        }


def _bool_flag(parser, name):
    parser.add_argument(name, action=argparse.BooleanOptionalAction, default=False)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="cosmos_predict", description="Cosmos-Predict2.5 (taoplan test image: fake model)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    ims = commands.add_parser("inference_microservice", help="Run the inference microservice")
    actions = ims.add_subparsers(dest="action", required=True)

    start = actions.add_parser("start", help="Start the microservice (foreground)")
    which = start.add_mutually_exclusive_group(required=True)
    which.add_argument("--checkpoint-path", help="Absolute path of a checkpoint directory")
    which.add_argument("--model", help=f"Registered model key ({', '.join(MODEL_KEYS)})")
    start.add_argument("--output-dir", default=DEFAULT_OUTPUT_DIR)
    start.add_argument("--port", type=int, default=8080)
    start.add_argument("--idle-timeout-minutes", type=float, default=30.0)
    start.add_argument(
        "--context-parallel-size", type=int, default=int(os.environ.get("WORLD_SIZE", "1") or 1)
    )
    _bool_flag(start, "--disable-guardrails")
    _bool_flag(start, "--offload-guardrail-models")
    _bool_flag(start, "--offload-diffusion-model")
    start.add_argument("--pid-file", default=DEFAULT_PID_FILE)

    stop = actions.add_parser("stop", help="Stop a microservice started with --pid-file")
    stop.add_argument("--pid-file", default=DEFAULT_PID_FILE)
    return parser


def _stop(pid_file: str) -> int:
    try:
        with open(pid_file, encoding="utf-8") as handle:
            pid = int(handle.read().strip())
    except (OSError, ValueError) as exc:
        print(f"cosmos_predict: no running microservice ({pid_file}: {exc})", file=sys.stderr)
        return 1
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        print(f"cosmos_predict: process {pid} is not running", file=sys.stderr)
    with contextlib.suppress(OSError):
        os.unlink(pid_file)
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.action == "stop":
        return _stop(args.pid_file)

    flags = {
        "checkpoint_path": args.checkpoint_path,
        "model": args.model,
        "output_dir": args.output_dir,
        "port": args.port,
        "idle_timeout_minutes": args.idle_timeout_minutes,
        "context_parallel_size": args.context_parallel_size,
        "disable_guardrails": args.disable_guardrails,
        "offload_guardrail_models": args.offload_guardrail_models,
        "offload_diffusion_model": args.offload_diffusion_model,
        "pid_file": args.pid_file,
    }
    logger.info("cosmos_predict inference_microservice start: %s", json.dumps(flags, sort_keys=True))
    try:
        with open(args.pid_file, "w", encoding="utf-8") as handle:
            handle.write(f"{os.getpid()}\n")
    except OSError as exc:
        logger.warning("could not write pid file %s: %s", args.pid_file, exc)

    job_id = os.environ.get("TAO_API_JOB_ID") or str(uuid.uuid4())
    hooks.RECORD_OVERRIDE = {
        "predict": flags,
        "port": args.port,
        "model_path": args.checkpoint_path or args.model,
    }
    specs = {
        "checkpoint_path": args.checkpoint_path,
        "model_key": args.model,
        "model_path": args.checkpoint_path or args.model,
        "output_dir": args.output_dir,
    }
    server = FakeCosmosPredictServer.create_from_tao_job(
        job_data={"job_id": job_id, "specs": specs}, docker_env_vars={}, port=args.port
    )
    server.idle_timeout_minutes = args.idle_timeout_minutes
    server.start_server_immediate()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
