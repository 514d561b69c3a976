"""What lasts on disk: taoplan's state, the apply journal, the state lock, the TAO skill's
service registry and the running gateways' reports (what each routes and has in flight). Every
write is atomic (temp file, then rename) and refuses planted symlinks.

Imports: ``taoplan.common``, ``taoplan.errors``, ``taoplan.labels``.
"""
