# kgdx API image. Untested here (no Docker engine on the build machines): build with
#   docker compose build
# Installs the same way as `make install`: torch first, at the pinned version, then the project
# with the constraints file.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    KGDX_HOME=/var/lib/kgdx

WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY graph ./graph
COPY kg_loaders ./kg_loaders
COPY extractors ./extractors
COPY gnn ./gnn
COPY api ./api
COPY data ./data
COPY docs ./docs

RUN pip install torch==2.13.0 \
 && pip install -c constraints.txt . \
 && useradd --create-home --uid 10001 kgdx \
 && mkdir -p /var/lib/kgdx && chown kgdx /var/lib/kgdx

USER kgdx
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=5 \
  CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"
# 0.0.0.0 only with API keys: without KGDX_API_KEYS (JSON entries from `kgdx keys create`)
# `kgdx serve` refuses to start and says how to make keys. /healthz needs no key, so the
# healthcheck above works either way.
CMD ["kgdx", "serve", "--host", "0.0.0.0", "--port", "8000"]
