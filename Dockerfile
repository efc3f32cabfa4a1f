# reelbase: the API (`reelbase serve`) and the UI (Streamlit) from one image.
# docker-compose.yml runs it beside a Milvus standalone; `docker build -t reelbase .` alone works too.
FROM python:3.11-slim

# TORCH_INDEX_URL picks the PyTorch build: empty takes PyPI's (CUDA, runs on CPUs too);
# https://download.pytorch.org/whl/cpu gives a much smaller CPU-only image.
ARG TORCH_INDEX_URL=""

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    REELBASE_DATA_DIR=/data \
    HF_HOME=/models/huggingface

WORKDIR /app
RUN if [ -n "$TORCH_INDEX_URL" ]; then pip install --index-url "$TORCH_INDEX_URL" torch torchvision; fi
COPY pyproject.toml README.md ./
COPY common common
COPY generator generator
COPY indexer indexer
COPY search search
COPY ui ui
RUN pip install . && useradd --create-home --uid 1000 reelbase \
    && mkdir -p /data /models && chown reelbase /data /models
USER reelbase
VOLUME ["/data", "/models"]
EXPOSE 8000 8501

HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"
CMD ["reelbase", "serve", "--host", "0.0.0.0", "--port", "8000"]
