"""Platform local-docker: one container per service on a Docker engine (local socket, tcp:// or ssh://),
from the rendered ``docker run`` line; plan and status list containers over the socket directly."""
