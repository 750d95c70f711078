# Like python:3.11-slim, pip may install into the image's Python: an image is its own environment (PEP 668's
# marker guards a shared system, which a container is not).
rm -f /usr/lib/python3.11/EXTERNALLY-MANAGED
