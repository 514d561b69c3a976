"""``cosmos-rl-inference-microservice``: the real TAO base server with a tiny fake VLM.

Command line (as in production):
    cosmos-rl-inference-microservice --job '<json>' --docker_env_vars '<json>' [--port 8080]
        [--idle_timeout_minutes N] [--disable_auto_deletion]
"""

import argparse
import json

from . import echo, hooks, knobs

hooks.ENTRYPOINT = "cosmos-rl-inference-microservice"
hooks.ensure_patched()

from nvidia_tao_core.microservices.handlers.base_inference_microservice_server import (  # noqa: E402
    BaseInferenceMicroserviceServer,
)
from nvidia_tao_core.microservices.handlers.huggingface_inference_microservice_server import (  # noqa: E402
    parse_job_arg,
)

logger = knobs.logger


class FakeCosmosRLServer(BaseInferenceMicroserviceServer):
    """Real BaseInferenceMicroserviceServer; only the model is fake."""

    IMAGE_EXTENSIONS = [".jpg", ".jpeg", ".png", ".bmp", ".tiff", ".webp", ".gif"]
    VIDEO_EXTENSIONS = [".mp4", ".mkv", ".webm", ".avi", ".mov"]

    def get_supported_file_extensions(self):
        return list(self.IMAGE_EXTENSIONS), list(self.VIDEO_EXTENSIONS)

    def load_model_into_memory(self, **kwargs) -> bool:
        model_path = kwargs.get("model_path") or kwargs.get("hf_model")
        knobs.simulate_load("cosmos-rl")
        if not model_path:
            raise ValueError("specs.model_path is required")
        self.model = {"model_path": model_path, "fake": True}
        logger.info("fake cosmos-rl model 'loaded': %s", model_path)
        return True

    def run_model_inference(self, **kwargs):
        media = kwargs.get("media") or []
        if isinstance(media, str):
            media = [media]
        if not media:
            raise RuntimeError("Cosmos requires 'media' parameter")
        for item in media:
            self._reject_cloud_uri(item)
        knobs.simulate_inference()
        reply = echo.build(self.model["model_path"], kwargs)
        return {"response": json.dumps(reply, sort_keys=True)}


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="cosmos-rl-inference-microservice",
        description="Cosmos-RL Inference Microservice Server (taoplan test image: fake model)",
    )
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--job", type=parse_job_arg)
    parser.add_argument("--docker_env_vars", type=parse_job_arg)
    parser.add_argument(
        "--idle_timeout_minutes",
        type=int,
        default=30,
        help="Minutes of inactivity before auto-deletion (default: 30)",
    )
    parser.add_argument(
        "--disable_auto_deletion", action="store_true", help="Disable automatic deletion on idle timeout"
    )
    args = parser.parse_args(argv)
    logger.info("Job data: %s", args.job)
    logger.info("Docker env vars: %s", args.docker_env_vars)

    server = FakeCosmosRLServer.create_from_tao_job(
        job_data=args.job, docker_env_vars=args.docker_env_vars, port=args.port
    )
    server.idle_timeout_minutes = args.idle_timeout_minutes
    server.auto_deletion_enabled = not args.disable_auto_deletion
    server.start_server_immediate()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
