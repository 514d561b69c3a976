"""Observation hooks on the REAL BaseInferenceMicroserviceServer (test image only).

Two small wrappers are put on the real class as soon as its module is imported
(see autohook.py, loaded from a .pth file, so they also apply to
``python -m nvidia_tao_core.microservices.handlers.huggingface_inference_microservice_server``,
whose ``main()`` we do not touch):

* ``create_from_tao_job`` is wrapped to write the "received" record
  (/tmp/taoplan-fake-received.json) with exactly the ``job_data``/``docker_env_vars``/``port``
  that the entrypoint's own argument parsing produced, then calls the original unchanged.
* Only when TAO_FAKE_INIT_SECONDS or TAO_FAKE_INIT_FAIL is set: ``update_progress`` is wrapped
  so that the first progress update of the real ``_initialize_background`` ("initializing",
  phase "starting") is followed by the delay / a raised exception. The exception therefore
  travels through the real init error handling (readiness 503 ``initialization_failed``).
"""

import datetime
import inspect
import json
import os
import sys

from . import knobs

BASE_MODULE = "nvidia_tao_core.microservices.handlers.base_inference_microservice_server"

# Set by an entrypoint that wants to record something else than the job payload
# (cosmos_predict has no --job/--docker_env_vars).
RECORD_OVERRIDE = None
ENTRYPOINT = None


def _umask() -> str:
    current = os.umask(0)
    os.umask(current)
    return f"{current:04o}"


def _entrypoint() -> str:
    if ENTRYPOINT:
        return ENTRYPOINT
    argv0 = sys.argv[0] if sys.argv else ""
    name = os.path.basename(argv0)
    if name.endswith(".py"):
        name = name[:-3]
    return name


def write_received(record: dict) -> str:
    """Write the received record atomically and return its path."""
    data = {
        "format": 1,
        "entrypoint": _entrypoint(),
        "argv": list(sys.argv),
        "orig_argv": list(getattr(sys, "orig_argv", []) or []),
        "job": None,
        "docker_env_vars": None,
        "predict": None,
        "port": None,
        "model_path": None,
        "server_class": None,
        "pid": os.getpid(),
        "uid": os.getuid(),
        "gid": os.getgid(),
        "umask": _umask(),
        "cwd": os.getcwd(),
        "environ_names": sorted(os.environ),
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(),
    }
    data.update(record)
    path = knobs.received_path()
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True, default=str)
        handle.write("\n")
    os.replace(tmp, path)
    knobs.logger.info("wrote %s", path)
    return path


def _model_path_from_job(job):
    if isinstance(job, dict):
        specs = job.get("specs")
        if isinstance(specs, dict):
            return specs.get("model_path") or specs.get("model_name")
    return None


def patch_base_class(cls) -> None:
    if cls.__dict__.get("_taoplan_fake_patched"):
        return

    original_factory = cls.__dict__["create_from_tao_job"].__func__
    signature = inspect.signature(original_factory)

    def create_from_tao_job(klass, *args, **kwargs):
        try:
            bound = signature.bind(klass, *args, **kwargs)
            bound.apply_defaults()
            job = bound.arguments.get("job_data")
            env = bound.arguments.get("docker_env_vars")
            record = RECORD_OVERRIDE or {
                "job": job,
                "docker_env_vars": env,
                "port": bound.arguments.get("port"),
                "model_path": _model_path_from_job(job),
            }
            record = dict(record, server_class=klass.__name__)
            write_received(record)
        except Exception as exc:  # never break the real server because of the test hook
            knobs.logger.warning("could not write the received record: %s", exc)
        return original_factory(klass, *args, **kwargs)

    create_from_tao_job.__doc__ = original_factory.__doc__
    cls.create_from_tao_job = classmethod(create_from_tao_job)

    if knobs.init_seconds() or knobs.init_fail():
        original_update = cls.update_progress

        def update_progress(self, stage, message, remaining_steps=None, details=None):
            result = original_update(self, stage, message, remaining_steps, details)
            if (
                stage == "initializing"
                and isinstance(details, dict)
                and details.get("phase") == "starting"
                and not getattr(self, "_taoplan_fake_init_done", False)
            ):
                self._taoplan_fake_init_done = True
                knobs.simulate_init()  # may raise: handled by the real _initialize_background
            return result

        update_progress.__doc__ = original_update.__doc__
        cls.update_progress = update_progress

    cls._taoplan_fake_patched = True


def ensure_patched() -> None:
    """Import the real base module (the autohook patches it on import) and make sure it is patched."""
    import importlib

    module = importlib.import_module(BASE_MODULE)
    patch_base_class(module.BaseInferenceMicroserviceServer)
