"""What lasts on disk: taoplan's state, the apply journal, the state lock and the TAO skill's
service registry. Every write is atomic (temp file, fsync, rename) and refuses planted symlinks.

Imports: ``taoplan.common``, ``taoplan.errors``.
"""
