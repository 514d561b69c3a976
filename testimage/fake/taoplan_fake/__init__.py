"""Test-only helpers for the taoplan TAO test image.

Nothing in here replaces the real TAO server: the HTTP server, readiness/chat contract,
background init and model-load threads are the real
``nvidia_tao_core.microservices.handlers.base_inference_microservice_server`` (7.3.0).
This package only provides tiny fake *models* and the production entrypoint names.
See testimage/README.md.
"""

FAKE_VERSION = "1"
