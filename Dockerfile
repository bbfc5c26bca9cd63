# evledger as one image: `evledger run` (ingest + projectors) and `evledger serve` (the API).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

# The whole build context: .dockerignore keeps out what the image does not need (tests,
# benchmarks, caches, local data), so every package pyproject.toml lists is copied, new
# ones too (tests/unit/test_docker_image.py checks it on the files).
COPY . .
RUN pip install . && useradd --create-home evledger && mkdir /data && chown evledger /data

USER evledger
ENV EVLEDGER_DATA_DIR=/data
ENTRYPOINT ["evledger"]
CMD ["--help"]
