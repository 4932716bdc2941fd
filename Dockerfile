# syntax=docker/dockerfile:1
# nudge: `docker build -t nudge .` then `docker run --rm nudge worker` (see docker-compose.yml).

# --- build: install nudge and its dependencies into a virtualenv --------------------
# A compiler is at hand for dependencies without a wheel for this platform (e.g. arm64).
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies from the hash-pinned lock (`make lock` writes it from pyproject.toml), in
# their own layer; then nudge itself, adding nothing the lock does not hold.
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock
COPY . .
RUN pip install --no-deps . && pip check

# --- runtime: the virtualenv, the example trigger files, a non-root user -------------
FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    NUDGE_DATA_DIR=/var/lib/nudge \
    NUDGE_WEB_HOST=0.0.0.0
RUN groupadd --system --gid 10001 nudge \
 && useradd --system --uid 10001 --gid nudge --home-dir /var/lib/nudge --create-home \
      --shell /usr/sbin/nologin nudge \
 && mkdir /models && chown nudge:nudge /models
# /models: where `nudge train` writes and delivery workers read published models; a new
# named volume mounted there takes this owner.
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# Trigger files referenced by path (`nudge triggers apply /app/nudge/demo/...`).
COPY nudge/demo/*.yaml /app/nudge/demo/
USER nudge
EXPOSE 6066 6067 2525
ENTRYPOINT ["nudge"]
CMD ["--help"]
