# transcriber: drop-folder transcription daemon (WhisperX, offline models baked in).
# Not built in this repository's CI (no Docker engine there); tests/unit/test_packaging.py
# checks the files it copies and the command it runs.
FROM python:3.11-slim

# cpu: the small CPU-only PyTorch build (default); cu128: the CUDA build for GPUs.
ARG TORCH_VARIANT=cpu

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CONFIG_PATH=/app/config.yaml

RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Heavy, rarely changing layers first: torch, then the other dependencies.
RUN pip install torch==2.8.* torchaudio==2.8.* torchvision==0.23.* \
        --index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}"
COPY requirements.txt ./
RUN pip install -r requirements.txt

# The offline models, baked into the image so it runs with no network.
COPY pyproject.toml ./
COPY transcriber ./transcriber
RUN pip install --no-deps . \
    && python -m transcriber models install \
    && useradd --create-home --uid 1000 transcriber \
    && mkdir -p /app/shared \
    && chown -R transcriber /app/shared /app/models

COPY config.yaml ./

USER transcriber
VOLUME ["/app/shared"]
EXPOSE 8000
CMD ["python", "-m", "transcriber", "--config", "/app/config.yaml"]
