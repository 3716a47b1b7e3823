# syntax=docker/dockerfile:1
# Wardgate container image: `docker build -t wardgate:0.1.0 .`
# The build stage installs the project into a virtualenv; the runtime stage copies only that
# virtualenv, so no compiler, pip cache or source tree ships in the image.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# A C compiler for the compiled PII scanner (gateway/_piiscan.c); only this stage has it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/wardgate
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY audit ./audit
RUN /opt/wardgate/bin/pip install . \
 && /opt/wardgate/bin/pip uninstall --yes pip setuptools

FROM python:3.11-slim
# Numeric ids: Kubernetes can only verify runAsNonRoot for a numeric USER. They match the
# chart's securityContext defaults (helm/wardgate/values.yaml).
RUN groupadd --system --gid 10001 wardgate \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/wardgate \
      --shell /usr/sbin/nologin wardgate \
 && mkdir -p /etc/wardgate/policies /var/lib/wardgate/spool \
 && chown -R 10001:10001 /var/lib/wardgate
COPY --from=build /opt/wardgate /opt/wardgate
ENV PATH=/opt/wardgate/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# The working directory is writable by the user (relative paths such as .wardgate/ land here);
# the root filesystem can then be mounted read-only.
WORKDIR /var/lib/wardgate
USER 10001:10001
EXPOSE 8080 8081
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
ENTRYPOINT ["wardgate"]
CMD ["serve", "--config", "/etc/wardgate/wardgate.yaml"]
